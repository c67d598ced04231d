"""leak@k: the unbiased estimate and the Clopper-Pearson-mapped bounds.

References: brute-force enumeration of k-subsets (itertools), the expectation of the estimate
under Binomial(n, p) summed with scipy.stats.binom.pmf (it must equal 1 - (1 - p)^k exactly:
that is what "unbiased" means), and scipy.stats.binomtest(...).proportion_ci(method="exact")
for the Clopper-Pearson interval (its two-sided 1 - 2a interval has one-sided ends at 1 - a).
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy.stats import binom, binomtest

from shared.errors import InvalidInput
from shared.stats.leak import MAX_K, leak_at_k, leak_at_k_estimate, mean_leak_at_k


def test_estimate_matches_enumeration_of_subsets() -> None:
    draws = [1, 1, 0, 0, 0, 0]  # c = 2 of n = 6
    for k in range(1, 7):
        subsets = list(itertools.combinations(range(6), k))
        share = sum(1 for s in subsets if any(draws[i] for i in s)) / len(subsets)
        assert leak_at_k_estimate(2, 6, k) == pytest.approx(share, abs=1e-15)
    assert leak_at_k_estimate(2, 6, 3) == pytest.approx(0.8, abs=1e-15)  # 1 - C(4,3)/C(6,3)


@pytest.mark.parametrize(("n", "k", "p"), [(20, 5, 0.1), (50, 50, 0.02), (200, 10, 0.003)])
def test_estimate_is_unbiased(n: int, k: int, p: float) -> None:
    expectation = sum(
        binom.pmf(c, n, p) * leak_at_k_estimate(c, n, k)  # type: ignore[operator]
        for c in range(n + 1)
    )
    assert expectation == pytest.approx(1.0 - (1.0 - p) ** k, rel=1e-10)


def test_estimate_is_exact_for_tiny_values_and_none_above_n() -> None:
    # One leak in 8192 draws, k = 1: exactly 1/8192 (no cancellation in 1 - ratio).
    assert leak_at_k_estimate(1, 8192, 1) == 1.0 / 8192
    assert leak_at_k_estimate(0, 100, 10) == 0.0
    assert leak_at_k_estimate(100, 100, 10) == 1.0
    assert leak_at_k_estimate(3, 10, 11) is None


def test_bounds_map_clopper_pearson_through_leak_at_k() -> None:
    alpha = 0.01
    res = leak_at_k([3, 0, 200], [200, 200, 200], [1, 10, 100, 1000], alpha=alpha)
    for row, c in enumerate((3, 0, 200)):
        ci = binomtest(c, 200).proportion_ci(confidence_level=1 - 2 * alpha, method="exact")
        for j, k in enumerate((1, 10, 100, 1000)):
            assert res.lower[row, j] == pytest.approx(1 - (1 - ci.low) ** k, rel=1e-9, abs=1e-14)
            assert res.upper[row, j] == pytest.approx(1 - (1 - ci.high) ** k, rel=1e-9, abs=1e-14)
    assert math.isnan(res.estimate[0, 3])  # k = 1000 > n = 200
    assert res.estimate[0, 1] == leak_at_k_estimate(3, 200, 10)
    assert (res.lower <= res.upper).all()


def test_bad_k_names_the_field() -> None:
    with pytest.raises(InvalidInput) as err:
        leak_at_k([1], [10], [1, 0], alpha=0.05)
    assert err.value.param == "k[1]" and str(MAX_K) in err.value.message
    with pytest.raises(InvalidInput):
        leak_at_k([1], [10], [MAX_K + 1], alpha=0.05)


# (p, n, k): small and large p, k below and above n.
SETTINGS = [(0.001, 200, 100), (0.01, 500, 10), (0.05, 100, 10), (0.3, 50, 3), (0.02, 64, 200)]


@pytest.mark.parametrize(("p", "n", "k"), SETTINGS)
def test_leak_at_k_bounds_cover(p: float, n: int, k: int) -> None:
    alpha, runs = 0.05, 4000
    rng = np.random.default_rng(1234)
    c = rng.binomial(n, p, size=runs)
    res = leak_at_k(c, np.full(runs, n), [k], alpha=alpha)
    truth = 1.0 - (1.0 - p) ** k
    slack = 3.0 * math.sqrt(alpha * (1 - alpha) / runs)  # 3 binomial standard errors
    assert np.mean(res.upper[:, 0] < truth) <= alpha + slack
    assert np.mean(res.lower[:, 0] > truth) <= alpha + slack


def test_mean_leak_at_k_bounds_hold_over_prompts() -> None:
    alpha, runs, m, n, k = 0.1, 300, 20, 100, 10
    rng = np.random.default_rng(7)
    p = rng.uniform(0.0, 0.05, size=m)
    truth = np.mean(1.0 - (1.0 - p) ** k)
    misses = 0
    for _ in range(runs):
        c = rng.binomial(n, p)
        res = mean_leak_at_k(c, np.full(m, n), [k], alpha=alpha)
        assert res.lower[0] <= res.estimate[0] <= res.upper[0]
        misses += bool(res.upper[0] < truth or res.lower[0] > truth)
    assert misses / runs <= 2 * alpha + 3 * math.sqrt(2 * alpha / runs)


def test_large_n_uses_log_space_and_agrees_with_exact_integers() -> None:
    # Just above the exact-integer range the log-space product must match the exact value.
    for c, k in ((1, 1), (3, 50), (40, 1000), (2, 9000)):
        n = 10_001
        exact = (math.comb(n, k) - math.comb(n - c, k)) / math.comb(n, k)
        assert leak_at_k_estimate(c, n, k) == pytest.approx(exact, rel=1e-11)
    assert leak_at_k_estimate(400_000, 500_000, 100_000) == 1.0  # n - c < k
