"""Exact fixed-n bounds for one threshold or one quantile level fixed before sampling.

References: scipy.stats.binomtest(...).proportion_ci(method="exact") for Clopper-Pearson on
#{X_i > x}; the definition of the order-statistic rank via scipy.stats.binom.cdf; coverage by
simulation on a continuous and on a discrete score with atoms at 0 and 1.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import binom, binomtest

from shared.stats.rows import bound_rows


def test_survival_cp_matches_scipy_and_beats_the_band_on_a_small_tail() -> None:
    alpha = 0.01
    x = np.zeros(1000)
    x[:5] = 0.9  # 5 of 1000 draws above 0.5
    t = bound_rows([x], alpha=alpha, thresholds=[0.5])
    ci = binomtest(5, 1000).proportion_ci(confidence_level=1 - 2 * alpha, method="exact")
    assert t.survival_cp_upper[0, 0] == pytest.approx(ci.high, rel=1e-10)
    assert t.survival_cp_lower[0, 0] == pytest.approx(ci.low, rel=1e-10)
    # DKW pays for all thresholds at once: 0.005 + sqrt(ln(100) / 2000) = 0.053.
    assert t.survival_upper[0, 0] == pytest.approx(0.005 + math.sqrt(math.log(100) / 2000))
    assert t.survival_upper[0, 0] > 3 * t.survival_cp_upper[0, 0]


def test_quantile_lower_is_the_binomial_order_statistic() -> None:
    alpha, n, q = 0.05, 100, 0.5
    xs = np.arange(n) / n  # x_(j) = (j - 1) / n
    x = np.random.default_rng(5).permutation(xs)  # rows are in sampling order, never sorted
    t = bound_rows([x], alpha=alpha, quantiles=[0.0, q, 1.0])
    j = max(i for i in range(n + 1) if binom.cdf(i - 1, n, q) <= alpha)  # cdf(-1) = 0
    assert t.quantile_lower[0, 1] == xs[j - 1]
    assert t.quantile_lower[0, 0] == 0.0 and t.quantile_lower[0, 2] == xs[-1]
    assert (t.quantile_lower <= t.quantile_upper).all()


@pytest.mark.parametrize("kind", ["beta", "atoms"])
def test_quantile_lower_and_survival_cp_cover(kind: str) -> None:
    alpha, runs, n = 0.1, 2000, 60
    rng = np.random.default_rng(11)
    if kind == "beta":
        x = rng.beta(2, 5, (runs, n))
        q_true = {0.5: 0.26444998, 0.9: 0.51031631}  # scipy.stats.beta(2, 5).ppf(q)
        tail_true = 1 - 0.890625  # P(X > 0.5) = 1 - scipy.stats.beta(2, 5).cdf(0.5)
    else:  # 50% at 0, 20% at 1, 30% uniform: Q(0.5) = 0, Q(0.9) = 1, P(X > 0.5) = 0.35
        u = rng.random((runs, n))
        x = np.where(u < 0.5, 0.0, np.where(u < 0.7, 1.0, rng.random((runs, n))))
        q_true = {0.5: 0.0, 0.9: 1.0}
        tail_true = 0.2 + 0.3 * 0.5
    t = bound_rows(x, alpha=alpha, thresholds=[0.5], quantiles=list(q_true))
    slack = 3 * math.sqrt(alpha * (1 - alpha) / runs)
    for j, true in enumerate(q_true.values()):
        assert np.mean(t.quantile_lower[:, j] > true + 1e-9) <= alpha + slack
    assert np.mean(t.survival_cp_upper[:, 0] < tail_true) <= alpha + slack
    assert np.mean(t.survival_cp_lower[:, 0] > tail_true) <= alpha + slack
