"""The output error the ``--max-error`` budget applies to.

For each output, with the calibration runs concatenated along the batch axis (reference ``A``, candidate
``B``, ``N`` rows):

    raw       = ||B − A|| / ||A||                                   (relative L2, as ``compare`` reports it)
    centered  = ||(B − mean B) − (A − mean A)|| / ||A − mean A||     (means over the N rows; N ≥ 2)

and the error is ``max(raw, centered)``, the worst over outputs. The centered form keeps an output that
barely depends on its input (a constant part that dominates, as in a network of random weights) from
hiding any error behind that constant part; on a model whose outputs vary with the input it is close to
``raw``. An output that does not vary at all over the calibration rows counts by ``raw`` only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from analyzer.latency.numerics import compare_outputs


def _stacked(runs: Sequence[Mapping[str, Any]], name: str) -> np.ndarray:
    return np.concatenate([np.atleast_1d(np.asarray(run[name], dtype=np.float64)) for run in runs], axis=0)


def centered_error(reference: np.ndarray, candidate: np.ndarray) -> float | None:
    """``||(B − mean B) − (A − mean A)|| / ||A − mean A||`` over rows; None with one row or no variation."""
    if reference.ndim == 0 or reference.shape[0] < 2:
        return None
    spread = reference - reference.mean(axis=0, keepdims=True)
    norm = float(np.linalg.norm(spread))
    if norm == 0.0 or not np.isfinite(norm):
        return None
    moved = candidate - candidate.mean(axis=0, keepdims=True)
    return float(np.linalg.norm(moved - spread)) / norm


def output_error(reference: Sequence[Mapping[str, Any]], candidate: Sequence[Mapping[str, Any]]) -> float:
    """The budgeted error of ``candidate``'s runs against ``reference``'s (module docstring)."""
    worst = 0.0
    for name in reference[0]:
        a, b = _stacked(reference, name), _stacked(candidate, name)
        if a.shape != b.shape:
            return float("inf")
        if not (np.isfinite(a).all() and np.isfinite(b).all()):
            return float("inf")
        norm = float(np.linalg.norm(a))
        raw = float(np.linalg.norm(b - a)) / norm if norm > 0 else float(np.linalg.norm(b - a))
        centered = centered_error(a, b)
        worst = max(worst, raw, centered if centered is not None else 0.0)
    return worst


def comparison_dict(reference: Sequence[Mapping[str, Any]], candidate: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """``compare``'s metrics (relative L2, cosine, max abs, top-1 for class vectors) plus the budgeted error
    and the outputs' variation over the calibration rows (spread / norm: near 0, the output barely
    depends on its input)."""
    doc = compare_outputs(reference, candidate).to_dict()
    doc["budget_error"] = output_error(reference, candidate)
    variation = []
    for name in reference[0]:
        a = _stacked(reference, name)
        centered = a - a.mean(axis=0, keepdims=True) if a.ndim and a.shape[0] > 1 else None
        norm = float(np.linalg.norm(a))
        variation.append(float(np.linalg.norm(centered)) / norm if centered is not None and norm > 0 else None)
    known = [v for v in variation if v is not None]
    doc["input_variation"] = min(known) if known else None
    return doc


__all__ = ["output_error", "centered_error", "comparison_dict"]
