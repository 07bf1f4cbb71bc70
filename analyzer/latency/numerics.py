"""Numerical comparison of two models' outputs on the same inputs.

For a reference output ``a`` and a candidate ``b`` (flattened, in float64):

- max abs error        ``max |a - b|``
- relative L2 error    ``||a - b||_2 / ||a||_2`` (``||a - b||_2`` when ``a`` is all zeros)
- cosine similarity    ``<a, b> / (||a||_2 ||b||_2)`` (1.0 when both are zero)
- top-1 agreement      share of rows whose argmax over axis 1 is the same; only for a class vector per
  row — an output of shape (N, C) with C > 1, a classifier's logits — and ``None`` otherwise (the
  argmax of a detector's (N, 84, anchors) map or a feature map means nothing)

Several samples (runs) of one output are concatenated before the metrics are taken, so the relative
error is over everything the comparison saw. :func:`compare_outputs` reports each output and the
worst value of each metric over all outputs. Used by the passes' verification and ``analyzer compare``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class OutputMetrics:
    name: str
    max_abs_error: float
    relative_l2_error: float
    cosine_similarity: float
    top1_agreement: float | None  # None: not a classifier-like output
    elements: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Comparison:
    """Worst value of each metric over all outputs, and the per-output figures."""

    max_abs_error: float
    relative_l2_error: float
    cosine_similarity: float
    top1_agreement: float | None
    samples: int
    outputs: list[OutputMetrics] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["outputs"] = [o.to_dict() for o in self.outputs]
        return d


def output_metrics(name: str, reference: Any, candidate: Any) -> OutputMetrics:
    """The four metrics for one output; ``reference`` and ``candidate`` are arrays of the same shape."""
    import numpy as np

    a = np.asarray(reference)
    b = np.asarray(candidate)
    if a.shape != b.shape:
        raise ValueError(f"output {name!r}: shapes differ, {list(a.shape)} vs {list(b.shape)}")
    a64 = a.astype(np.float64, copy=False).ravel()
    b64 = b.astype(np.float64, copy=False).ravel()
    diff = a64 - b64
    if a64.size == 0:
        return OutputMetrics(name, 0.0, 0.0, 1.0, None, 0)
    if not (np.isfinite(a64).all() and np.isfinite(b64).all()):
        nan = float("nan")
        return OutputMetrics(name, float("inf"), float("inf"), nan, None, int(a64.size))
    norm_a = float(np.linalg.norm(a64))
    norm_b = float(np.linalg.norm(b64))
    norm_diff = float(np.linalg.norm(diff))
    relative = norm_diff / norm_a if norm_a > 0 else norm_diff
    if norm_a == 0 and norm_b == 0:
        cosine = 1.0
    elif norm_a == 0 or norm_b == 0:
        cosine = 0.0
    else:
        cosine = float(a64 @ b64) / (norm_a * norm_b)
    top1 = None
    if a.ndim == 2 and a.shape[1] > 1:
        top1 = float(np.mean(np.argmax(a, axis=1) == np.argmax(b, axis=1)))
    return OutputMetrics(name, float(np.max(np.abs(diff))), relative, cosine, top1, int(a64.size))


def compare_outputs(
    reference: Sequence[Mapping[str, Any]],
    candidate: Sequence[Mapping[str, Any]],
) -> Comparison:
    """Compare runs of two models: ``reference[i]`` and ``candidate[i]`` map output names to arrays.

    The runs of each output are concatenated along axis 0 (the batch axis) before the metrics are taken.
    """
    import numpy as np

    if len(reference) != len(candidate):
        raise ValueError(f"{len(reference)} reference runs but {len(candidate)} candidate runs")
    if not reference:
        raise ValueError("nothing to compare: no runs")
    names = list(reference[0])
    missing = [n for n in names if any(n not in run for run in candidate)]
    if missing:
        raise ValueError(f"candidate lacks output(s) {', '.join(missing)}")
    per_output = []
    for name in names:
        ref = np.concatenate([np.atleast_1d(run[name]) for run in reference], axis=0)
        cand = np.concatenate([np.atleast_1d(run[name]) for run in candidate], axis=0)
        per_output.append(output_metrics(name, ref, cand))
    top1 = [o.top1_agreement for o in per_output if o.top1_agreement is not None]
    return Comparison(
        max_abs_error=max(o.max_abs_error for o in per_output),
        relative_l2_error=max(o.relative_l2_error for o in per_output),
        cosine_similarity=min(o.cosine_similarity for o in per_output),
        top1_agreement=min(top1) if top1 else None,
        samples=len(reference),
        outputs=per_output,
    )
