"""Clopper-Pearson bounds (M_bin) against conbo/statsmodels and scipy.stats.beta."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import beta

from shared.errors import InvalidInput
from shared.stats import bound_rows, clopper_pearson
from tests.shared.stats.reference_values import CONBO_BINOMIAL


@pytest.mark.parametrize(("n", "k", "alpha", "lower", "upper"), CONBO_BINOMIAL)
def test_matches_conbo_with_its_two_sided_alpha(
    n: int, k: int, alpha: float, lower: float, upper: float
) -> None:
    cp = clopper_pearson(k, n, alpha=alpha)
    assert cp.lower[0] == pytest.approx(lower, abs=1e-12)
    assert cp.upper[0] == pytest.approx(upper, abs=1e-12)


def test_matches_scipy_beta_quantiles() -> None:
    # Own reference: scipy.stats.beta.ppf, the textbook definition.
    rng = np.random.default_rng(2)
    n = rng.integers(1, 3000, size=200)
    k = rng.integers(0, n + 1)
    cp = clopper_pearson(k, n, alpha=0.01)
    with np.errstate(all="ignore"):
        up = np.where(k == n, 1.0, beta.ppf(0.99, k + 1, n - k))
        lo = np.where(k == 0, 0.0, beta.ppf(0.01, k, n - k + 1))
    np.testing.assert_allclose(cp.upper, up, atol=1e-12)
    np.testing.assert_allclose(cp.lower, lo, atol=1e-12)


def test_closed_forms_at_the_ends() -> None:
    # k = 0: upper = 1 - alpha^(1/n); k = n: lower = alpha^(1/n).
    cp = clopper_pearson([0, 20], [20, 20], alpha=0.05)
    assert cp.upper[0] == pytest.approx(1 - 0.05 ** (1 / 20), abs=1e-14)
    assert cp.lower[0] == 0.0
    assert cp.lower[1] == pytest.approx(0.05 ** (1 / 20), abs=1e-14)
    assert cp.upper[1] == 1.0


def test_rows_get_binary_bounds_only_when_every_score_is_0_or_1() -> None:
    t = bound_rows([[0, 1, 1, 0, 1], [0.0, 1.0, 0.5], [0] * 7, [1.0] * 3], alpha=0.05)
    assert t.binary.tolist() == [True, False, True, True]
    assert t.binary_k.tolist() == [3, -1, 0, 3]
    assert t.row(1)["binary"] is None
    cp = clopper_pearson([3, 0, 3], [5, 7, 3], alpha=0.05)
    np.testing.assert_array_equal(t.binary_upper[[0, 2, 3]], cp.upper)
    np.testing.assert_array_equal(t.binary_lower[[0, 2, 3]], cp.lower)


@pytest.mark.parametrize(
    ("k", "n", "alpha", "param"),
    [(-1, 5, 0.05, "k[0]"), (6, 5, 0.05, "k[0]"), (1, 0, 0.05, "n"), (1, 5, 1.0, "alpha"),
     (1, 5, float("nan"), "alpha"), (1.5, 5, 0.05, "k")],
)  # fmt: skip
def test_bad_input_is_named(k: object, n: object, alpha: float, param: str) -> None:
    with pytest.raises(InvalidInput) as info:
        clopper_pearson(k, n, alpha=alpha)  # type: ignore[arg-type]
    assert info.value.param == param


def test_a_failed_inversion_at_extreme_alpha_falls_back_to_the_trivial_bound() -> None:
    # scipy's betaincinv returns NaN for k = 3, n = 6 at alpha = 1.86e-213 (schemathesis found
    # it through POST /v1/bounds); 0 is a valid lower bound at every level.
    cp = clopper_pearson([0, 1, 3, 6], [6, 6, 6, 6], alpha=1.86e-213)
    assert np.isfinite(cp.lower).all() and np.isfinite(cp.upper).all()
    assert cp.lower[2] == 0.0 and (cp.lower <= cp.upper).all()
