"""analyzer.latency.stats against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from analyzer.latency.stats import (
    _binomial_half_log_cdf,
    bootstrap_median_ratio_ci,
    mann_whitney_u,
    median_ci_ranks,
    rank_with_ties,
    summarize,
)


def test_binomial_half_cdf_n4():
    # C(4, k) = 1, 4, 6, 4, 1 over 2^4
    expected = np.array([1, 1 + 4, 1 + 4 + 6, 1 + 4 + 6 + 4, 16]) / 16
    np.testing.assert_allclose(np.exp(_binomial_half_log_cdf(4)), expected, rtol=1e-12)


def test_binomial_half_cdf_large_n_does_not_underflow():
    log_cdf = _binomial_half_log_cdf(5000)
    assert math.isclose(math.exp(log_cdf[-1]), 1.0, rel_tol=1e-9)
    assert math.isclose(math.exp(log_cdf[2500]), 0.5 + math.comb(5000, 2500) / 2**5000 / 2, rel_tol=1e-9)


@pytest.mark.parametrize(
    "n, lower, coverage",
    [
        # n = 10: 2·P(B <= 1) = 2·(1 + 10)/1024 = 0.0215 <= 0.05; 2·P(B <= 2) = 2·56/1024 = 0.109 > 0.05
        (10, 2, 1 - 2 * (1 + 10) / 1024),
        # n = 6: 2·P(B = 0) = 2/64 = 0.031 <= 0.05; 2·P(B <= 1) = 14/64 > 0.05
        (6, 1, 1 - 2 / 64),
        # n = 5: even [x(1), x(5)] covers only 1 - 2/32 = 0.9375
        (5, 1, 1 - 2 / 32),
        # n = 20: P(B <= 5) = (1 + 20 + 190 + 1140 + 4845 + 15504)/2^20 = 21700/1048576, doubled 0.0414
        # P(B <= 6) adds C(20, 6) = 38760: doubled 0.115
        (20, 6, 1 - 2 * 21700 / 2**20),
    ],
)
def test_median_ci_ranks(n, lower, coverage):
    low, up, cov = median_ci_ranks(n)
    assert (low, up) == (lower, n - lower + 1)
    assert cov == pytest.approx(coverage, rel=1e-9)


def test_summarize_ten_samples():
    samples = [0.001 * k for k in (7, 1, 3, 10, 2, 9, 4, 8, 6, 5)]
    stats = summarize(samples, batch=4)
    assert stats.iterations == 10
    assert stats.mean == pytest.approx(0.0055)
    assert stats.median == pytest.approx(0.0055)
    # type-7 quantile: position (n - 1)·q = 8.1 -> 9 + 0.1·(10 - 9) ms
    assert stats.p90 == pytest.approx(0.0091)
    assert stats.p99 == pytest.approx(0.001 * (9 + 0.91 * 1))
    assert stats.min == pytest.approx(0.001)
    assert stats.max == pytest.approx(0.010)
    # sample std of 1..10: sqrt(sum((k - 5.5)^2) / 9) = sqrt(82.5 / 9)
    assert stats.std == pytest.approx(0.001 * math.sqrt(82.5 / 9))
    assert stats.throughput == pytest.approx(4 / 0.0055)
    assert stats.median_ci == pytest.approx((0.002, 0.009))  # ranks 2 and 9


def test_summarize_rejects_empty():
    with pytest.raises(ValueError):
        summarize([])


def test_rank_with_ties():
    ranks, counts = rank_with_ties(np.array([3.0, 1.0, 3.0, 2.0]))
    np.testing.assert_array_equal(ranks, [3.5, 1.0, 3.5, 2.0])
    assert sorted(counts.tolist()) == [1, 1, 2]


def test_mann_whitney_no_ties_hand_counted():
    a, b = [1.0, 2.0, 3.0], [4.0, 5.0]
    # no a exceeds any b: U_a = 0, U_b = 3·2 = 6
    mu = 3 * 2 / 2
    sigma = math.sqrt(3 * 2 / 12 * (5 + 1))
    z = (abs(0 - mu) - 0.5) / sigma
    result = mann_whitney_u(a, b)
    assert (result.u_a, result.u_b) == (0.0, 6.0)
    assert result.z == pytest.approx(z)
    assert result.p_value == pytest.approx(math.erfc(z / math.sqrt(2)))
    assert result.prob_b_greater == 1.0


def test_mann_whitney_with_ties_hand_counted():
    a, b = [1.0, 2.0, 2.0], [2.0, 3.0]
    # pairs (a_i, b_j): 1 vs {2, 3}: 0; each 2 vs 2: a tie, 1/2; each 2 vs 3: 0 -> U_a = 1/2 + 1/2
    u_a = 0.5 + 0.5
    n = 5
    tie_term = (3**3 - 3) / (n * (n - 1))  # the value 2 appears three times
    sigma = math.sqrt(3 * 2 / 12 * ((n + 1) - tie_term))
    z = (abs(u_a - 3) - 0.5) / sigma
    result = mann_whitney_u(a, b)
    assert result.u_a == u_a
    assert result.p_value == pytest.approx(math.erfc(z / math.sqrt(2)))


def test_mann_whitney_all_equal_is_not_significant():
    assert mann_whitney_u([1.0] * 5, [1.0] * 5).p_value == 1.0


def test_mann_whitney_detects_shift_and_not_noise():
    rng = np.random.default_rng(1)
    a = rng.normal(1.0, 0.05, 200)
    assert mann_whitney_u(a, rng.normal(1.1, 0.05, 200)).p_value < 1e-6
    assert mann_whitney_u(a, rng.normal(1.0, 0.05, 200)).p_value > 0.01


def test_bootstrap_constant_samples():
    assert bootstrap_median_ratio_ci([2.0] * 10, [3.0] * 10) == pytest.approx((1.5, 1.5))


def test_bootstrap_covers_true_ratio_and_excludes_one():
    rng = np.random.default_rng(2)
    a = rng.uniform(1.0, 2.0, 400)  # median 1.5
    b = 1.3 * rng.uniform(1.0, 2.0, 400)  # median 1.95: true ratio 1.3
    low, high = bootstrap_median_ratio_ci(a, b, seed=3)
    assert 1.0 < low < 1.3 < high < 1.6

