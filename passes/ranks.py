"""Rank selection shared by the low-rank passes (``bottleneck``, ``asymmetric``, ``separable``)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from analyzer.errors import AnalyzerError


def choose_rank(
    singular_values: np.ndarray,
    *,
    rank: int | None = None,
    rank_ratio: float | None = None,
    energy: float | None = None,
    max_error: float | None = None,
) -> int:
    """Rank from the singular values ``s`` of an unfolding (full rank ``n = len(s)``).

    ``rank``: ``min(rank, n)``; ``rank_ratio``: ``ceil(ratio * n)``; ``energy``: the smallest ``r`` with
    ``sum(s[:r]**2) >= energy * sum(s**2)``; ``max_error``: the smallest ``r`` with
    ``sqrt(sum(s[r:]**2) / sum(s**2)) <= max_error`` (Eckart–Young: that is the relative error of the
    best rank-``r`` approximation). Never below 1.
    """
    n = len(singular_values)
    power = np.asarray(singular_values, dtype=np.float64) ** 2
    total = float(power.sum())
    if rank is not None:
        return max(1, min(rank, n))
    if rank_ratio is not None:
        return max(1, min(n, math.ceil(rank_ratio * n - 1e-9)))
    if total == 0:
        return 1
    kept = np.cumsum(power) / total  # kept[r - 1] = energy of the first r
    if energy is not None:
        return max(1, min(n, int(np.searchsorted(kept, energy - 1e-12)) + 1))
    if max_error is not None:
        tail = np.maximum(1.0 - kept, 0.0)  # tail[r - 1] = relative squared error at rank r
        ok = np.nonzero(np.sqrt(tail) <= max_error)[0]
        return max(1, int(ok[0]) + 1 if len(ok) else n)
    return n


def check_rank_options(name: str, options: Mapping[str, Any], *, default_ratio: float | None = 0.5) -> dict[str, Any]:
    """Validate ``rank``/``rank_ratio``/``energy``/``max_error``; at most one of the first three."""
    given = {k: v for k, v in options.items() if v is not None}
    selectors = [k for k in ("rank", "rank_ratio", "energy") if k in given]
    if len(selectors) > 1:
        raise AnalyzerError(f"{name}: give one of rank, rank_ratio, energy (got {', '.join(selectors)})")
    if "rank" in given and (not isinstance(given["rank"], int) or given["rank"] < 1):
        raise AnalyzerError(f"{name}: rank must be a positive integer, got {given['rank']!r}")
    for key in ("rank_ratio", "energy"):
        if key in given and not 0 < given[key] <= 1:
            raise AnalyzerError(f"{name}: {key} must be in (0, 1], got {given[key]}")
    if "max_error" in given and not given["max_error"] >= 0:
        raise AnalyzerError(f"{name}: max_error must be >= 0, got {given['max_error']}")
    if not selectors and "max_error" not in given and default_ratio is not None:
        given["rank_ratio"] = default_ratio
    return given
