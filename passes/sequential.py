"""Composition of passes with verification chained from one rewrite pass to the next.

:class:`Sequential` is :class:`onnx_ir.passes.Sequential` whose result keeps one step per pass (a
:class:`~passes._records.RewriteResult`) and compares the final model with the input (from the outputs
already computed where it can). Each rewrite pass starts from the previous step's model and reuses its
outputs and cost report. A failing pass raises :class:`~passes._records.PassFailed` naming it; the steps
before it are kept in ``error.completed`` and the input model is untouched.

Any :class:`onnx_ir.passes.PassBase` may take part. One that is not a :class:`~passes._base.RewritePass`
(onnx-ir's own passes, say) runs on a copy when it would change its input, and becomes a step with its
``modified`` flag and the cost report of its output but no verification; the next rewrite pass runs its
input afresh, and the final comparison runs the models it has no outputs for. ``verify`` and ``progress``
given to :class:`Sequential` apply to every rewrite pass for the run; the passes themselves are not changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import onnx_ir as ir

from analyzer.clock import StageClock
from analyzer.latency.numerics import Comparison, compare_outputs
from passes._base import Progress, RewritePass, as_ir_model, costs
from passes._records import PassFailed, RecordSelection, RewriteResult, TargetRecord, totals_dict
from passes._verify import VerifyOptions, run_model


@dataclass
class SequentialResult(RecordSelection, ir.passes.PassResult):
    """The steps of a run and the final model against the input; the fields a
    :class:`~passes._records.RewriteResult` also has mean the same here, over the whole run."""

    steps: list[RewriteResult] = field(default_factory=list)
    comparison: Comparison | None = None  # final model vs the input model, on the same inputs

    @property
    def records(self) -> list[TargetRecord]:
        return [r for step in self.steps for r in step.records]

    @property
    def report_before(self) -> Any:
        return self.steps[0].report_before if self.steps else None

    @property
    def report_after(self) -> Any:
        return self.steps[-1].report_after if self.steps else None

    @property
    def timings(self) -> dict[str, float]:
        """Seconds per stage summed over the steps."""
        total: dict[str, float] = {}
        for step in self.steps:
            for stage, seconds in step.timings.items():
                total[stage] = total.get(stage, 0.0) + seconds
        return total

    def to_dict(self) -> dict[str, Any]:
        return {
            "modified": self.modified,
            "before": totals_dict(self.report_before),
            "after": totals_dict(self.report_after),
            "comparison": None if self.comparison is None else self.comparison.to_dict(),
            "passes": [step.to_dict() for step in self.steps],
        }


class Sequential(ir.passes.Sequential):
    """Run passes in order; ``verify`` and ``progress`` (when given) replace each rewrite pass's own for the run.

    Always functional: the input model is never changed, whatever the passes are."""

    def __init__(self, *passes: ir.passes.PassBase, verify: VerifyOptions | None = None,
                 progress: Progress | None = None):
        for p in passes:
            if not isinstance(p, ir.passes.PassBase):
                raise TypeError(f"passes.Sequential takes onnx_ir passes, got {type(p).__name__}")
        super().__init__(*passes)
        self.verify = verify
        self.progress = progress

    @property
    def in_place(self) -> bool:
        return False

    @property
    def changes_input(self) -> bool:
        return False

    def __call__(self, model: Any, /) -> SequentialResult:
        return super().__call__(as_ir_model(model))

    def call(self, model: ir.Model) -> SequentialResult:
        steps: list[RewriteResult] = []
        previous: RewriteResult | None = None
        current = model
        for p in self.passes:
            try:
                result = self._step(p, current, previous)
            except PassFailed as e:
                e.completed = steps + e.completed  # a nested Sequential's steps follow ours
                raise
            steps.append(result)
            current, previous = result.model, result
        return SequentialResult(current, any(s.modified for s in steps), steps, self._final_comparison(model, steps))

    def _step(self, p: ir.passes.PassBase, model: ir.Model, previous: RewriteResult | None) -> RewriteResult:
        if isinstance(p, RewritePass):
            return p.apply(model, previous, verify=self.verify, progress=self.progress)
        return foreign_step(p, model, previous, self.verify)

    def _final_comparison(self, original: ir.Model, steps: list[RewriteResult]) -> Comparison | None:
        changed = [s for s in steps if s.modified]
        if not changed:
            return None
        # The first changing step ran the input model (the steps before it left it as it was), when it
        # is a rewrite; the last step's outputs are there unless it is a pass without verification.
        reference, final = changed[0].run_before, steps[-1].run_after
        if reference is None and final is None:
            reference = run_model(original, self.verify or VerifyOptions())
        if reference is None:
            reference = run_model(original, final.options, final.feeds)
        if final is None:
            final = run_model(steps[-1].model, reference.options, reference.feeds)
        if reference.options != final.options:
            return None  # the passes verified on different inputs: no common ground
        return compare_outputs(reference.outputs, final.outputs)


def foreign_step(p: ir.passes.PassBase, model: ir.Model, previous: RewriteResult | None,
                 options: VerifyOptions | None = None) -> RewriteResult:
    """Run a pass that is not a rewrite pass as one step: on a copy when it would change ``model``, with the
    cost report of its output (at the shapes ``options`` binds) and no verification (nor reference outputs
    for the next pass)."""
    clock = StageClock()
    report_before = previous.report_after if previous is not None and previous.report_after else costs(model, options)
    clock.lap("costs")
    functional = ir.passes.functionalize(p) if p.in_place or p.changes_input else p
    outcome = functional(model)
    clock.lap("rewrite")
    name = getattr(p, "name", None)
    result = RewriteResult(outcome.model, outcome.modified, name if isinstance(name, str) else type(p).__name__,
                           report_before=report_before, timings=clock.laps)
    if outcome.modified:
        result.report_after = costs(outcome.model, options)
        clock.lap("costs")
    else:
        result.report_after = report_before
        result.run_after = previous.run_after if previous is not None else None
    return result


__all__ = ["Sequential", "SequentialResult", "foreign_step"]
