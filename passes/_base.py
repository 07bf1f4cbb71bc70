"""The rewrite-pass framework on :mod:`onnx_ir.passes`.

A :class:`RewritePass` is a functional pass (the input model is never changed — that is what makes a
failing pass's roll-back free): it clones the model, selects targets (the pass's pattern plus a user
filter: node names or regexes, op attributes, minimum MACs from the analyzer), rewrites each target or
records why not, runs shape inference, fills in the analyzer's params/MACs per target and verifies the
result (:mod:`passes._verify`). A pass claiming exactness, or given ``max_error``, raises
:class:`~passes._records.PassFailed` when the verified output error exceeds its tolerance.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import onnx_ir as ir
import onnx_ir.passes.common as common_passes

from analyzer.clock import StageClock
from analyzer.errors import AnalyzerError

from passes._records import PassFailed, RewriteResult, Skip, TargetRecord
from passes._verify import ModelRun, VerifyOptions, rounding_sensitivity, verify_rewrite

EXACT_OUTPUT_TOLERANCE = 1e-4  # relative L2 output error of an exact rewrite: float32 rounding through a deep net
# An exact rewrite's output error is also allowed this many times the input model's own rounding
# sensitivity (passes._verify.rounding_sensitivity): a model that amplifies float32 rounding cannot
# tell an exact rewrite from rounding any closer than that.
ROUNDING_SENSITIVITY_FACTOR = 10.0
EXACT_WEIGHT_TOLERANCE = 1e-5  # relative Frobenius error of an exact factorization (computed in float64)

Progress = Callable[[str, int, int, str], None]  # (pass name, index, total, node name)

# filter keywords that stand for an attribute value: kernel=5 selects kernel_shape [5, 5]
ATTRIBUTE_KEYWORDS = {"kernel": "kernel_shape", "stride": "strides"}


def costs(model: ir.Model, options: VerifyOptions | None = None) -> Any:
    """The analyzer's report for ``model`` (params, MACs, peak memory per node and in total) at the input
    shapes ``options`` binds (the shapes the verification runs)."""
    import analyzer

    binding = options.analysis_binding() if options is not None else {}
    # bytes: the analyzer walks them at the wire level without copying weights (a ModelProto is deep-copied)
    return analyzer.inspect(ir.serde.serialize_model(model).SerializeToString(), **binding)


def as_ir_model(model: Any) -> Any:
    """Accept an ``onnx_ir.Model``, a ``PassResult``, an ``onnx.ModelProto`` or a path to an .onnx file.

    A ModelProto or file is normalised for rewriting (:func:`analyzer.model_files.normalise_for_rewrite`);
    an ``onnx_ir.Model`` is the caller's object and is used as it is."""
    if isinstance(model, (ir.Model, ir.passes.PassResult)):
        return model
    import os

    import onnx

    if isinstance(model, (str, os.PathLike)):
        model = onnx.load(str(model))
    if isinstance(model, onnx.ModelProto):
        from analyzer.model_files import normalise_for_rewrite

        converted = ir.serde.deserialize_model(model)
        normalise_for_rewrite(converted)  # weights listed as inputs or held in Constants become initializers
        return converted
    raise TypeError(f"expected an onnx_ir.Model, onnx.ModelProto or path, got {type(model).__name__}")


class NodeFilter:
    """The user's choice of targets: ``nodes`` (names, or regexes matched in full against the node name),
    ``attrs`` (attribute values that must match, e.g. ``{"kernel_shape": [5, 5]}``)
    and ``min_macs`` (the node's MACs in the analyzer's report)."""

    def __init__(self, nodes: str | Iterable[str] | None = None, attrs: Mapping[str, Any] | None = None,
                 min_macs: int | None = None):
        patterns = [nodes] if isinstance(nodes, str) else list(nodes or [])
        try:
            self.patterns = [(p, re.compile(p)) for p in patterns]
        except re.error as e:
            raise AnalyzerError(f"nodes: bad regular expression: {e}") from e
        self.attrs = dict(attrs or {})
        self.min_macs = min_macs

    @property
    def explicit(self) -> bool:
        return bool(self.patterns or self.attrs)

    def matches_name(self, node: ir.Node) -> bool:
        if not self.patterns:
            return True
        name = node.name or ""
        return any(name == p or rx.fullmatch(name) for p, rx in self.patterns)

    def matches_attrs(self, node: ir.Node) -> bool:
        for key, want in self.attrs.items():
            attr = node.attributes.get(key)
            have = None if attr is None else attr.value
            if isinstance(have, (list, tuple)) and not isinstance(want, (list, tuple)):
                want = [want] * len(have)  # kernel_shape=5 means 5x5
            if (list(have) if isinstance(have, (list, tuple)) else have) != (list(want) if isinstance(want, (list, tuple)) else want):
                return False
        return True

    def describe(self) -> str:
        parts = [f"nodes={'|'.join(p for p, _ in self.patterns)}"] if self.patterns else []
        return ", ".join(parts + [f"{k}={v}" for k, v in self.attrs.items()]) or "all nodes"


class RewritePass(ir.passes.FunctionalPass):
    """Base of the rewrites: subclasses set ``name`` and ``op_types`` and implement ``_try_rewrite``.

    Every pass takes the target filter ``nodes=`` (names or regexes), ``kernel=`` and ``stride=`` (an int
    for square values, or a list), ``min_macs=`` and, in general form, ``attrs=`` (attribute values) — the
    same keys as ``--pass NAME:key=value`` — plus ``verify=`` and ``progress=``, which a
    :class:`passes.Sequential` given its own replaces for the run without changing the pass."""

    name = "rewrite"
    op_types: tuple[str, ...] = ("Conv",)

    def __init__(self, *, nodes: str | Iterable[str] | None = None, kernel: int | Iterable[int] | None = None,
                 stride: int | Iterable[int] | None = None, min_macs: int | None = None,
                 attrs: Mapping[str, Any] | None = None, max_error: float | None = None,
                 verify: VerifyOptions | None = None, progress: Progress | None = None):
        attrs = dict(attrs or {})
        for keyword, value in (("kernel", kernel), ("stride", stride)):
            if value is None:
                continue
            attribute = ATTRIBUTE_KEYWORDS[keyword]
            if attribute in attrs:
                raise AnalyzerError(f"{self.name}: give {keyword}= or attrs[{attribute!r}], not both")
            attrs[attribute] = value
        self.filter = NodeFilter(nodes, attrs, min_macs)
        self.max_error = max_error
        self.verify_options = verify or VerifyOptions()
        self.progress = progress

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.filter.describe()})"

    @property
    def exact(self) -> bool:
        """Whether the pass must reproduce its input exactly (within float rounding)."""
        return False

    def _try_rewrite(self, graph: ir.Graph, node: ir.Node) -> TargetRecord | Skip:
        raise NotImplementedError

    def __call__(self, model: Any, /) -> RewriteResult:
        return super().__call__(as_ir_model(model))

    def call(self, model: ir.Model) -> RewriteResult:
        return self.apply(model)

    def apply(self, model: ir.Model, previous: RewriteResult | None = None, *, verify: VerifyOptions | None = None,
              progress: Progress | None = None) -> RewriteResult:
        """Run the pass on a copy of ``model``; ``previous`` (the result that produced ``model``) supplies
        the cost report and the reference outputs so they are not computed twice. ``verify`` and
        ``progress``, when given, replace the pass's own for this call."""
        clock = StageClock()
        options = verify or self.verify_options
        report_before = previous.report_after if previous is not None and previous.report_after else costs(model, options)
        clock.lap("costs")
        work = model.clone()
        records, new_values = self._rewrite_all(work.graph, report_before, progress or self.progress)
        clock.lap("rewrite")
        modified = any(r.rewritten for r in records)
        result = RewriteResult(work, modified, self.name, records, report_before=report_before, timings=clock.laps)
        if not modified:
            result.report_after = report_before
            result.run_after = previous.run_after if previous is not None else None
            return result
        common_passes.ShapeInferencePass()(work)
        keep_output_declarations(model, work)
        clock.lap("shapes")
        reference = previous.run_after if previous is not None else None
        result.verification, result.run_before, result.run_after = verify_rewrite(
            model, work, new_values, options, reference
        )
        clock.lap("verify")
        if result.verification.structural_failure is None:
            result.report_after = costs(work, options)
            _fill_costs(records, report_before, result.report_after)
            clock.lap("costs")
        if (self.exact and result.verification.comparison is not None
                and not result.verification.comparison.relative_l2_error <= EXACT_OUTPUT_TOLERANCE):
            result.verification.rounding_sensitivity = rounding_sensitivity(model, result.run_before)
            clock.lap("verify")
        failure = result.verification.structural_failure or self._tolerance_failure(result)
        if failure:
            result.verification.failure = failure
            raise PassFailed(f"{self.name}: {failure}; pass rolled back", result)
        return result

    def _candidates(self, graph: ir.Graph, report: Any) -> list[ir.Node]:
        macs = {n.name: n.macs for n in report.nodes} if report is not None else {}
        chosen = [n for n in graph if self.filter.matches_name(n) and self.filter.matches_attrs(n)]
        if self.filter.explicit and not chosen:
            raise AnalyzerError(f"{self.name}: no node matches {self.filter.describe()}")
        chosen = [n for n in chosen if n.op_type in self.op_types]
        if self.filter.min_macs is not None:
            chosen = [n for n in chosen if macs.get(n.name, 0) >= self.filter.min_macs]
        return chosen

    def _rewrite_all(self, graph: ir.Graph, report: Any,
                     progress: Progress | None = None) -> tuple[list[TargetRecord], list[ir.Value]]:
        candidates = self._candidates(graph, report)
        records: list[TargetRecord] = []
        new_values: list[ir.Value] = []
        unsupported: list[str] = []
        for i, node in enumerate(candidates):
            if progress is not None:
                progress(self.name, i, len(candidates), node.name)
            outcome = self._try_rewrite(graph, node)
            if isinstance(outcome, Skip):
                records.append(TargetRecord(node.name, node.op_type, False, outcome.reason))
                if outcome.unsupported:
                    unsupported.append(f"{node.name}: {outcome.reason}")
                continue
            records.append(outcome)
            new_values += [v for n in outcome.new_nodes for v in _outputs_of(graph, n)]
        if self.filter.explicit and records and len(unsupported) == len(records):
            raise AnalyzerError(f"{self.name}: no selected node can be rewritten ({unsupported[0]})")
        if self.filter.explicit and not candidates:
            raise AnalyzerError(f"{self.name}: {self.filter.describe()} selects no {'/'.join(self.op_types)} node")
        return records, new_values

    def _tolerance_failure(self, result: RewriteResult) -> str | None:
        comparison = result.verification.comparison if result.verification else None
        measured = comparison.relative_l2_error if comparison is not None else float("nan")
        if self.exact:
            bad = [r for r in result.rewritten if r.weight_error is not None and r.weight_error > EXACT_WEIGHT_TOLERANCE]
            if bad:
                return f"exact rewrite of {bad[0].node} has weight error {bad[0].weight_error:.3g}"
            sensitivity = result.verification.rounding_sensitivity or 0.0
            tolerance = max(EXACT_OUTPUT_TOLERANCE, ROUNDING_SENSITIVITY_FACTOR * sensitivity)
            if not measured <= tolerance:
                floor = (f" ({ROUNDING_SENSITIVITY_FACTOR:g} x the input model's float32 rounding sensitivity "
                         f"{sensitivity:.3g})" if tolerance > EXACT_OUTPUT_TOLERANCE else "")
                return f"output relative L2 error {measured:.3g} exceeds the exact tolerance {tolerance:g}{floor}"
        if self.max_error is not None:
            bad = [r for r in result.rewritten if r.weight_error is not None and r.weight_error > self.max_error]
            if bad:
                return f"{bad[0].node}: weight error {bad[0].weight_error:.3g} exceeds max_error={self.max_error:g}"
            if not measured <= self.max_error:
                return f"output relative L2 error {measured:.3g} exceeds max_error={self.max_error:g}"
        return None


def keep_output_declarations(before: ir.Model, after: ir.Model) -> None:
    """The graph outputs keep the type and shape the input model declared where inference found none: a
    rewrite next to an output (an Identity removed before it, a conv spliced in) hands the output to a
    new value, and onnx cannot always infer it again (a Reshape to a computed shape upstream); the
    checker refuses a graph output without a shape."""
    for new, old in zip(after.graph.outputs, before.graph.outputs):
        if new.type is None and old.type is not None:
            new.type = old.type
        if new.shape is None and old.shape is not None:
            new.shape = old.shape.copy() if hasattr(old.shape, "copy") else old.shape


def _outputs_of(graph: ir.Graph, node_name: str) -> list[ir.Value]:
    return [v for n in graph if n.name == node_name for v in n.outputs]


def _fill_costs(records: list[TargetRecord], before: Any, after: Any) -> None:
    old = {n.name: n for n in before.nodes}
    new = {n.name: n for n in after.nodes}
    for record in records:
        replaced = record.old_nodes or [record.node]
        if all(n in old for n in replaced):
            record.old_params = sum(old[n].params for n in replaced)
            record.old_macs = sum(old[n].macs for n in replaced)
        if record.rewritten and all(n in new for n in record.new_nodes):
            record.new_params = sum(new[n].params for n in record.new_nodes)
            record.new_macs = sum(new[n].macs for n in record.new_nodes)


__all__ = ["RewritePass", "NodeFilter", "costs", "as_ir_model", "ModelRun"]
