"""Latency statistics in numpy only: summaries, a CI for the median, Mann–Whitney U, a bootstrap.

Conventions (all samples are seconds per iteration):

- Quantiles use linear interpolation between order statistics (numpy's default, "type 7").
- The 95% CI for the median is the distribution-free order-statistic interval: with sorted samples
  x(1) <= ... <= x(n) and B ~ Binomial(n, 1/2), the interval [x(l), x(n-l+1)] covers the true median
  with probability 1 - 2·P(B <= l-1); l is the largest rank keeping that at or above the confidence.
- Mann–Whitney U: U_a = #{(i, j): a_i > b_j} + 0.5·#{a_i = b_j} = R_a - n_a(n_a+1)/2 (R_a: rank sum
  of a, ties given mid-ranks). Normal approximation with tie correction and continuity correction:
  mu = n_a n_b / 2, sigma² = n_a n_b / 12 · ((N+1) - Σ(t³-t) / (N(N-1))), z = (|U - mu| - 0.5) / sigma,
  two-sided p = erfc(|z| / √2). This matches scipy's ``mannwhitneyu(method="asymptotic")``.
- Bootstrap: percentile interval of median(b*) / median(a*) over resamples drawn with replacement
  from a and b independently.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass
class LatencyStats:
    """Summary of per-iteration latencies; times in seconds, throughput in items per second."""

    iterations: int
    mean: float
    median: float
    p90: float
    p99: float
    min: float
    max: float
    std: float  # sample standard deviation (ddof=1); 0 for one sample
    throughput: float  # batch / median
    median_ci: tuple[float, float]  # order-statistic interval
    median_ci_coverage: float  # exact coverage of that interval; below the confidence when n is tiny
    confidence: float = 0.95
    ci_method: str = "order statistic (binomial)"

    def to_dict(self) -> dict:
        return {
            "iterations": self.iterations,
            "mean_s": self.mean,
            "median_s": self.median,
            "p90_s": self.p90,
            "p99_s": self.p99,
            "min_s": self.min,
            "max_s": self.max,
            "std_s": self.std,
            "throughput_per_s": self.throughput,
            "median_ci_s": list(self.median_ci),
            "median_ci_coverage": self.median_ci_coverage,
            "confidence": self.confidence,
            "ci_method": self.ci_method,
        }


def _binomial_half_log_cdf(n: int) -> np.ndarray:
    """log P(B <= k) for k = 0..n, B ~ Binomial(n, 1/2), computed in log space (no underflow)."""
    k = np.arange(n + 1, dtype=np.float64)
    # log C(n, k) by the recurrence C(n, k+1) = C(n, k)·(n-k)/(k+1)
    log_comb = np.concatenate([[0.0], np.cumsum(np.log((n - k[:-1]) / (k[:-1] + 1)))])
    log_pmf = log_comb + n * math.log(0.5)
    return np.logaddexp.accumulate(log_pmf)


def median_ci_ranks(n: int, confidence: float = 0.95) -> tuple[int, int, float]:
    """1-based ranks (l, u) of the order-statistic CI for the median, and its exact coverage.

    Coverage of [x(l), x(n-l+1)] is 1 - 2·P(B <= l-1). When even [x(1), x(n)] covers less than
    ``confidence`` (n < 6 at 95%), that widest interval is returned with its smaller coverage.
    """
    if n < 1:
        raise ValueError("median CI needs at least one sample")
    alpha = 1.0 - confidence
    log_cdf = _binomial_half_log_cdf(n)
    tails = 2.0 * np.exp(log_cdf[: (n + 1) // 2])  # 2·P(B <= l-1) for l = 1..ceil(n/2)
    ok = np.nonzero(tails <= alpha + 1e-12)[0]
    lower = int(ok[-1]) + 1 if ok.size else 1
    coverage = float(1.0 - tails[lower - 1]) if n > 1 else 0.0
    return lower, n - lower + 1, max(coverage, 0.0)


def summarize(samples: np.ndarray | list[float], *, batch: int = 1, confidence: float = 0.95) -> LatencyStats:
    """Summary statistics of per-iteration latencies (seconds)."""
    x = np.sort(np.asarray(samples, dtype=np.float64))
    if x.size == 0:
        raise ValueError("no latency samples")
    lower, upper, coverage = median_ci_ranks(x.size, confidence)
    median = float(np.median(x))
    return LatencyStats(
        iterations=int(x.size),
        mean=float(x.mean()),
        median=median,
        p90=float(np.quantile(x, 0.90)),
        p99=float(np.quantile(x, 0.99)),
        min=float(x[0]),
        max=float(x[-1]),
        std=float(x.std(ddof=1)) if x.size > 1 else 0.0,
        throughput=batch / median if median > 0 else float("inf"),
        median_ci=(float(x[lower - 1]), float(x[upper - 1])),
        median_ci_coverage=coverage,
        confidence=confidence,
    )


def rank_with_ties(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """1-based mid-ranks of ``values`` and the size of every tie group (1 for untied values)."""
    values = np.asarray(values, dtype=np.float64)
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    # start index of each run of equal values
    starts = np.concatenate([[True], sorted_values[1:] != sorted_values[:-1]])
    group = np.cumsum(starts) - 1
    counts = np.bincount(group)
    first_rank = np.concatenate([[0], np.cumsum(counts)[:-1]]) + 1
    mid = first_rank + (counts - 1) / 2.0
    ranks = np.empty(values.size, dtype=np.float64)
    ranks[order] = mid[group]
    return ranks, counts


@dataclass
class MannWhitney:
    u_a: float  # pairs with a > b, ties counted half
    u_b: float  # n_a·n_b - u_a
    z: float
    p_value: float  # two-sided

    @property
    def prob_b_greater(self) -> float:
        """P(B > A) + P(B = A)/2: the common-language effect size."""
        total = self.u_a + self.u_b
        return self.u_b / total if total else 0.5


def mann_whitney_u(a: np.ndarray | list[float], b: np.ndarray | list[float]) -> MannWhitney:
    """Two-sided Mann–Whitney U test, normal approximation with tie and continuity corrections."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    n_a, n_b = a.size, b.size
    if n_a == 0 or n_b == 0:
        raise ValueError("Mann-Whitney needs samples on both sides")
    ranks, ties = rank_with_ties(np.concatenate([a, b]))
    n = n_a + n_b
    u_a = float(ranks[:n_a].sum() - n_a * (n_a + 1) / 2.0)
    u_b = n_a * n_b - u_a
    mu = n_a * n_b / 2.0
    tie_term = float((ties.astype(np.float64) ** 3 - ties).sum()) / (n * (n - 1)) if n > 1 else 0.0
    variance = n_a * n_b / 12.0 * ((n + 1) - tie_term)
    if variance <= 0:  # every value equal: no evidence of a difference
        return MannWhitney(u_a, u_b, 0.0, 1.0)
    z = max(abs(u_a - mu) - 0.5, 0.0) / math.sqrt(variance)
    return MannWhitney(u_a, u_b, z, math.erfc(z / math.sqrt(2.0)))


def bootstrap_median_ratio_ci(
    a: np.ndarray | list[float],
    b: np.ndarray | list[float],
    *,
    confidence: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
    chunk: int = 250,
) -> tuple[float, float]:
    """Percentile bootstrap CI of median(b) / median(a), resampling a and b independently."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.size == 0 or b.size == 0:
        raise ValueError("bootstrap needs samples on both sides")
    rng = np.random.default_rng(seed)
    ratios = np.empty(resamples, dtype=np.float64)
    for start in range(0, resamples, chunk):  # chunks bound memory at chunk·n floats
        count = min(chunk, resamples - start)
        med_a = np.median(a[rng.integers(0, a.size, (count, a.size))], axis=1)
        med_b = np.median(b[rng.integers(0, b.size, (count, b.size))], axis=1)
        ratios[start : start + count] = med_b / med_a
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(ratios, [tail, 1.0 - tail])
    return float(low), float(high)
