"""Bonferroni and Holm on constructed p-values (decisions worked out by hand in the comments),
and the family-wise error of the Holm "leaks" statement over a simulated forget set."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import binom

from shared.errors import InvalidInput
from shared.stats.family import binomial_pvalues_above, decide


def test_holm_steps_down_and_stops_at_first_failure() -> None:
    # Sorted: 0.005 <= 0.05/4, 0.01 <= 0.05/3, 0.03 > 0.05/2: stop. Reject the first two only.
    res = decide([0.01, 0.04, 0.03, 0.005], alpha=0.05, method="holm")
    assert res.reject.tolist() == [True, False, False, True]
    # Adjusted: 4 * 0.005, 3 * 0.01, max(0.03, 2 * 0.03), max(0.06, 1 * 0.04).
    assert res.adjusted.tolist() == pytest.approx([0.03, 0.06, 0.06, 0.02])


def test_holm_rejects_more_than_bonferroni() -> None:
    # Bonferroni: 0.011, 0.012 <= 0.05/4 = 0.0125 < 0.013. Holm: 0.011 <= 0.0125,
    # 0.012 <= 0.01667, 0.013 <= 0.025, 0.2 > 0.05.
    p = [0.011, 0.012, 0.013, 0.2]
    assert decide(p, alpha=0.05, method="bonferroni").reject.tolist() == [True, True, False, False]
    assert decide(p, alpha=0.05, method="holm").reject.tolist() == [True, True, True, False]
    assert decide(p, alpha=0.05, method="none").reject.tolist() == [True, True, True, False]
    assert decide(p, alpha=0.05, method="bonferroni").adjusted.tolist() == pytest.approx(
        [0.044, 0.048, 0.052, 0.8]
    )


def test_unknown_family_names_the_field() -> None:
    with pytest.raises(InvalidInput) as err:
        decide([0.1], alpha=0.05, method="sidak")
    assert err.value.param == "family" and "holm" in err.value.message


def test_binomial_pvalue_is_the_exact_tail() -> None:
    p = binomial_pvalues_above([0, 3, 10], [100, 100, 100], tau=0.02)
    assert p.tolist() == pytest.approx([1.0, binom.sf(2, 100, 0.02), binom.sf(9, 100, 0.02)])
    assert binomial_pvalues_above([0, 1], [10, 10], tau=0.0).tolist() == [1.0, 0.0]


def test_holm_controls_family_wise_error_over_a_forget_set_of_100() -> None:
    # 100 prompts: 80 at P(leak) = tau exactly (the null's worst case), 20 that clearly leak.
    alpha, tau, n, runs = 0.05, 0.02, 200, 600
    p_true = np.array([tau] * 80 + [0.1] * 20)
    rng = np.random.default_rng(2025)
    any_false = {"holm": 0, "bonferroni": 0, "none": 0}
    found = 0
    for _ in range(runs):
        c = rng.binomial(n, p_true)
        pv = binomial_pvalues_above(c, np.full(100, n), tau=tau)
        for method in any_false:
            res = decide(pv, alpha=alpha, method=method)
            any_false[method] += bool(res.reject[:80].any())
            if method == "holm":
                found += int(res.reject[80:].sum())
    slack = 3.0 * math.sqrt(alpha * (1 - alpha) / runs)
    assert any_false["holm"] / runs <= alpha + slack
    assert any_false["bonferroni"] / runs <= alpha + slack
    # Without a correction some null prompt is "shown to leak" in most forget sets.
    assert any_false["none"] / runs > 0.5
    assert found / runs > 10  # and Holm still finds most of the 20 leaking prompts
