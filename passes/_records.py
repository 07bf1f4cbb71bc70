"""What a rewrite pass reports: one :class:`TargetRecord` per candidate node and a :class:`RewriteResult`.

Records are plain data: the CLI's table and JSON both read them, nothing is printed by a pass.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import onnx_ir as ir

from analyzer.errors import AnalyzerError

if TYPE_CHECKING:
    from analyzer.latency.numerics import Comparison
    from analyzer.report import Report
    from passes._verify import ModelRun, Verification


@dataclass
class Skip:
    """Why a candidate node was declined. ``unsupported``: the node does not fit the pass's pattern
    (a grouped conv, a 1-D conv, ...), as opposed to a node that fits but must be left alone (shared weights)."""

    reason: str
    unsupported: bool = False


@dataclass
class TargetRecord:
    node: str
    op_type: str
    rewritten: bool
    detail: str  # what was done, or why the node was skipped
    new_nodes: list[str] = field(default_factory=list)
    old_nodes: list[str] = field(default_factory=list)  # nodes replaced, when more than ``node`` (fold-bn)
    weight_error: float | None = None  # ||W - W_hat||_F / ||W||_F of the composed kernel
    weight_preserving: bool = True  # False for structure-only rewrites (stack3x3 mode=init)
    old_params: int | None = None  # from the analyzer's report, filled in after the rewrite
    new_params: int | None = None
    old_macs: int | None = None
    new_macs: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class SavesModel:
    """``save(path)`` for a result that holds ``model``, the ``input_files`` it was read from and ``output``."""

    model: Any
    input_files: list
    output: str | None

    def save(self, path: Any) -> Any:
        """Write ``model`` to ``path`` atomically (weights beside it in ``<path>.data`` above protobuf's
        2 GiB limit); refuses a path that is one of the input's files."""
        from pathlib import Path

        from analyzer.model_files import save

        target = Path(path)
        save(self.model, target, self.input_files)
        self.output = str(target)
        return target


class RecordSelection:
    """``rewritten`` and ``skipped`` of a result that has ``records`` (one pass's, or a whole run's)."""

    records: list[TargetRecord]

    @property
    def rewritten(self) -> list[TargetRecord]:
        return [r for r in self.records if r.rewritten]

    @property
    def skipped(self) -> list[TargetRecord]:
        return [r for r in self.records if not r.rewritten]


@dataclass
class RewriteResult(RecordSelection, ir.passes.PassResult):
    """:class:`onnx_ir.passes.PassResult` plus the per-target records, the verification and the costs.

    The fields a :class:`passes.SequentialResult` also has mean the same there: ``records``, ``rewritten``,
    ``skipped``, ``comparison`` (output model against input model), ``report_before``/``report_after``
    and ``timings``."""

    pass_name: str = ""
    records: list[TargetRecord] = field(default_factory=list)
    verification: Verification | None = None  # None when nothing changed
    report_before: Report | None = None
    report_after: Report | None = None
    timings: dict[str, float] = field(default_factory=dict)  # seconds: rewrite, shapes, verify, costs
    run_before: ModelRun | None = None  # outputs of the pass's input model on the verification inputs
    run_after: ModelRun | None = None  # outputs of ``model`` on the same inputs, reused by the next pass

    @property
    def comparison(self) -> Comparison | None:
        """The outputs of ``model`` against those of the pass's input (None when nothing was verified)."""
        return None if self.verification is None else self.verification.comparison

    def to_dict(self) -> dict[str, Any]:
        return {
            "pass": self.pass_name,
            "modified": self.modified,
            "records": [r.to_dict() for r in self.records],
            "verification": None if self.verification is None else self.verification.to_dict(),
            "before": totals_dict(self.report_before),
            "after": totals_dict(self.report_after),
            "seconds": {k: round(v, 3) for k, v in self.timings.items()},
        }


def totals_dict(report: Report | None) -> dict[str, Any] | None:
    if report is None:
        return None
    t = report.totals
    return {"params": t.params, "macs": t.macs, "peak_memory_bytes": t.peak_memory_bytes, "weight_bytes": t.weight_bytes}


class PassFailed(AnalyzerError):
    """A pass's result failed verification; the pass was rolled back (its input model is untouched).

    ``result`` holds the rejected rewrite's records and verification; ``completed`` the results of the
    passes that ran before it in a :class:`passes.Sequential`; ``run`` (set by :func:`passes.optimize`)
    the whole run up to the failure, an :class:`passes.OptimizeResult` whose ``failure`` is this message.
    """

    exit_code = 1

    def __init__(self, message: str, result: RewriteResult, completed: list[RewriteResult] | None = None):
        super().__init__(message)
        self.result = result
        self.completed = list(completed or [])
        self.run: Any = None

    @property
    def steps(self) -> list[RewriteResult]:
        """The completed steps, then the rejected one."""
        return [*self.completed, self.result]
