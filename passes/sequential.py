"""Composition of rewrite passes with verification chained from one pass to the next.

:class:`Sequential` is :class:`onnx_ir.passes.Sequential` whose result keeps every pass's
:class:`~passes._records.RewriteResult` and compares the final model with the input (from the outputs
already computed, no extra run). Each pass starts from the previous pass's verified model and reuses its
outputs and cost report. A failing pass raises :class:`~passes._records.PassFailed` naming it; the passes
before it are kept in ``error.completed`` and the input model is untouched (all passes are functional).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import onnx_ir as ir

from analyzer.numerics import Comparison, compare_outputs
from passes._base import RewritePass, as_ir_model
from passes._records import PassFailed, RewriteResult, TargetRecord, totals_dict
from passes._verify import VerifyOptions


@dataclass
class SequentialResult(ir.passes.PassResult):
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

    def to_dict(self) -> dict[str, Any]:
        return {
            "modified": self.modified,
            "before": totals_dict(self.report_before),
            "after": totals_dict(self.report_after),
            "comparison": None if self.comparison is None else self.comparison.to_dict(),
            "passes": [step.to_dict() for step in self.steps],
        }


class Sequential(ir.passes.Sequential):
    """Run rewrite passes in order; ``verify`` (when given) replaces each pass's verification options."""

    def __init__(self, *passes: RewritePass, verify: VerifyOptions | None = None):
        super().__init__(*passes)
        for p in passes:
            if not isinstance(p, RewritePass):
                raise TypeError(f"passes.Sequential takes rewrite passes, got {type(p).__name__}")
            if verify is not None:
                p.verify_options = verify

    def __call__(self, model: Any, /) -> SequentialResult:
        return super().__call__(as_ir_model(model))

    def call(self, model: ir.Model) -> SequentialResult:
        steps: list[RewriteResult] = []
        previous: RewriteResult | None = None
        for p in self.passes:
            try:
                result = p.apply(model, previous)
            except PassFailed as e:
                e.completed = steps
                raise
            steps.append(result)
            model, previous = result.model, result
        modified = any(s.modified for s in steps)
        comparison = None
        # The first changing pass ran the input model (passes before it left it as it was).
        first_run = next((s.run_before for s in steps if s.run_before is not None), None)
        last_run = steps[-1].run_after
        if modified and first_run is not None and last_run is not None and first_run.options == last_run.options:
            comparison = compare_outputs(first_run.outputs, last_run.outputs)
        return SequentialResult(model, modified, steps, comparison)


__all__ = ["Sequential", "SequentialResult"]
