"""What ``optimize --auto`` found: plain data with one serializer (``AutoResult.to_dict()``, the
``analyzer.optimize.auto/1`` document) that the table, JSON and HTML renderings all read."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from passes._records import SavesModel

SCHEMA = "analyzer.optimize.auto/1"
NOTHING_PAYS = "no rewrite is faster on this provider"


@dataclass
class CandidateResult:
    """One candidate rewrite of one layer, measured on its own.

    ``layer_ratio`` is the median latency of the rewritten layer over the original's, timed interleaved
    at the layer's real input shape (< 1: faster), with its bootstrap CI and verdict as ``compare`` decides
    them; ``layer_error`` the relative L2 error of the layer's output on the calibration activations;
    ``output_error`` the model's output error (see :func:`passes.auto.errors.output_error`) with this
    rewrite alone. ``status`` says what the search did with it."""

    node: str
    label: str  # "bottleneck rank_ratio=0.5"
    spec: str  # the --pass spec that makes it, e.g. "bottleneck:rank_ratio=0.5,nodes=conv3"
    macs_before: int
    macs_after: int
    params_before: int
    params_after: int
    layer_ms_before: float | None = None
    layer_ms_after: float | None = None
    layer_ratio: float | None = None
    layer_ci: tuple[float, float] | None = None
    layer_verdict: str | None = None
    layer_error: float | None = None
    output_error: float | None = None
    cached: bool = False  # the layer timing came from the on-disk table
    status: str = "not measured"

    @property
    def mac_ratio(self) -> float:
        return self.macs_after / self.macs_before if self.macs_before else 1.0

    @property
    def layer_speedup(self) -> float | None:
        return 1.0 / self.layer_ratio if self.layer_ratio else None

    @property
    def saved_ms(self) -> float:
        """Milliseconds the rewrite saves in the layer (negative: it costs time)."""
        if self.layer_ms_before is None or self.layer_ms_after is None:
            return 0.0
        return self.layer_ms_before - self.layer_ms_after

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d.update(mac_ratio=self.mac_ratio, layer_speedup=self.layer_speedup, saved_ms=self.saved_ms)
        return d


@dataclass
class LayerResult:
    node: str
    signature: str  # "Conv 3x3 64->128 stride 1 at 1x64x112x112"
    input_shape: list[int]
    macs: int
    candidates: list[CandidateResult] = field(default_factory=list)
    chosen: str | None = None  # label of the chosen candidate
    skipped: str | None = None  # why no candidate was tried

    def to_dict(self) -> dict[str, Any]:
        return {"node": self.node, "signature": self.signature, "input_shape": self.input_shape, "macs": self.macs,
                "chosen": self.chosen, "skipped": self.skipped, "candidates": [c.to_dict() for c in self.candidates]}


@dataclass
class SearchStep:
    """One candidate set the greedy search tried: the accepted set so far plus ``node``'s ``label``."""

    node: str
    label: str
    accepted: bool
    output_error: float
    predicted_ms: float  # baseline latency minus the measured layer savings of the set
    macs: int  # the set's model MACs
    layers: list[str] = field(default_factory=list)  # "node: label" of every rewrite in the set

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class EndToEnd:
    """The whole rewritten model against the input, timed as ``analyzer compare`` times."""

    layers: list[str]  # "node: label" of the rewrites in the timed model
    verdict: str
    ratio: float  # median latency after / before
    ci: tuple[float, float]
    p_value: float
    rounds: int
    median_ms_before: float
    median_ms_after: float
    mac_limit: float  # MACs before / after: the speed-up if latency followed MACs
    output_error: float | None = None

    @property
    def measured_speedup(self) -> float:
        return 1.0 / self.ratio if self.ratio > 0 else float("inf")

    @property
    def share_of_limit(self) -> float | None:
        """Measured speed-up as a share of the MAC-ratio limit, both taken as time saved: (1 − 1/s) / (1 − 1/L)."""
        if self.mac_limit <= 1.0:
            return None
        return (1.0 - self.ratio) / (1.0 - 1.0 / self.mac_limit)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d.update(measured_speedup=self.measured_speedup, share_of_limit=self.share_of_limit)
        return d


@dataclass
class AutoResult(SavesModel):
    """The search, its choices, and the model it produced (``model``: the input when nothing pays)."""

    model: Any = field(repr=False)  # onnx_ir.Model to save
    reason: str | None  # why the model is unchanged (None: rewrites were chosen)
    source: str
    max_error: float
    provider: str  # the provider the sessions really used
    requested_provider: str
    machine: dict[str, Any]
    calibration: dict[str, Any]  # kind, samples, shapes, preprocessing, note
    baseline_ms: float  # the input model's median latency
    layers: list[LayerResult]
    steps: list[SearchStep]
    chosen: list[CandidateResult]
    end_to_end: EndToEnd | None  # the final timing of the written model (None: nothing was chosen)
    attempts: list[EndToEnd] = field(default_factory=list)  # end-to-end timings of sets dropped for not paying
    comparison: dict[str, Any] | None = None  # the written model's outputs against the input's, on calibration
    totals_before: dict[str, Any] | None = None
    totals_after: dict[str, Any] | None = None
    cache: dict[str, Any] = field(default_factory=dict)  # path, hits, misses
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    output: str | None = None
    input_files: list[Path] = field(default_factory=list, repr=False)

    @property
    def modified(self) -> bool:
        return bool(self.chosen)

    @property
    def outcome(self) -> str:
        if not self.chosen:
            return self.reason or NOTHING_PAYS
        e2e = self.end_to_end
        return f"{len(self.chosen)} layer(s) rewritten: {e2e.measured_speedup:.2f}x measured" if e2e else "rewritten"

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "input": self.source,
            "output": self.output,
            "written": self.output is not None,
            "modified": self.modified,
            "outcome": self.outcome,
            "reason": self.reason,
            "max_error": self.max_error,
            "provider": self.provider,
            "requested_provider": self.requested_provider,
            "machine": self.machine,
            "calibration": self.calibration,
            "baseline_ms": self.baseline_ms,
            "before": self.totals_before,
            "after": self.totals_after,
            "chosen": [{"node": c.node, "label": c.label, "spec": c.spec} for c in self.chosen],
            "end_to_end": None if self.end_to_end is None else self.end_to_end.to_dict(),
            "attempts": [a.to_dict() for a in self.attempts],
            "comparison": self.comparison,
            "layers": [layer.to_dict() for layer in self.layers],
            "steps": [s.to_dict() for s in self.steps],
            "cache": self.cache,
            "notes": self.notes,
            "timings": self.timings,
        }


__all__ = ["AutoResult", "LayerResult", "CandidateResult", "SearchStep", "EndToEnd", "SCHEMA", "NOTHING_PAYS"]
