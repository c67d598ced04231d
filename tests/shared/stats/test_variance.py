"""The sd upper bound (M_sigma): exact supremum of the variance over the two-sided DKW band."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import linprog, minimize_scalar

from shared.stats import bound_rows, dkw_epsilon
from shared.stats.variance import band_variance_upper_sorted, popoviciu_cap_sorted
from tests.shared.stats.conbo_construction import conbo_std_upper
from tests.shared.stats.reference_values import CONBO, ROWS_ON_GRID, grid_row


def band_sup_variance_lp(x: np.ndarray, eps: float) -> float:
    """Own reference, independent of our derivation: sup_F Var_F = min_c max_F E_F[(X - c)^2].

    The inner max is a linear programme over distributions on a fine support (0, 1, the samples
    and a 1/100 grid) whose CDF stays within eps of F_n at every support point; the outer
    min over c is convex (scipy's bounded scalar minimiser).
    """
    s = np.unique(np.concatenate([[0.0, 1.0], x, np.linspace(0, 1, 101)]))
    fn = (x[None, :] <= s[:, None]).mean(axis=1)
    lower, upper = np.maximum(fn - eps, 0.0), np.minimum(fn + eps, 1.0)
    cum = np.tril(np.ones((s.size, s.size)))
    a_ub = np.vstack([cum, -cum])
    b_ub = np.concatenate([upper, -lower])

    def worst(c: float) -> float:
        res = linprog(-((s - c) ** 2), A_ub=a_ub, b_ub=b_ub, A_eq=np.ones((1, s.size)),
                      b_eq=[1.0], bounds=(0, None), method="highs")  # fmt: skip
        assert res.status == 0
        return float(-res.fun)

    return float(minimize_scalar(worst, bounds=(0.0, 1.0), method="bounded",
                                 options={"xatol": 1e-10}).fun)  # fmt: skip


@pytest.mark.parametrize(
    "x",
    [
        np.array([0.0, 0.0, 0.2, 0.9]),
        np.array([0.1, 0.35, 0.4, 0.42, 0.8, 0.81, 1.0]),
        np.array([0.5] * 6),
        np.array([0.0] * 5 + [1.0] * 5),
        np.linspace(0.05, 0.6, 12),
        np.array([0.0] * 9 + [0.7] * 3 + [1.0]),
    ],
    ids=["atom0-n4", "n7", "all-equal", "zeros-ones", "spread-n12", "atoms-n13"],
)
def test_equals_the_lp_supremum(x: np.ndarray) -> None:
    eps = dkw_epsilon(x.size, 0.3, two_sided=True)
    ours = band_variance_upper_sorted(np.sort(x)[None, :], eps)[0]
    assert ours == pytest.approx(band_sup_variance_lp(x, eps), abs=1e-7)


def test_half_zeros_half_ones_gets_the_true_sd() -> None:
    # True sd is 0.5; conbo gives about 0.449 (it drops the atom at 0), we give 0.5.
    x = np.array([[0.0] * 512 + [1.0] * 512])
    assert bound_rows(x, alpha=0.01).std_upper[0] == 0.5
    assert conbo_std_upper(x, 0.01)[0] == pytest.approx(0.449, abs=5e-3)


@pytest.mark.parametrize("alpha", [0.05, 0.01])
@pytest.mark.parametrize("name", sorted(ROWS_ON_GRID))
def test_construction_copy_reproduces_conbo_and_ours_is_not_looser(alpha: float, name: str) -> None:
    x = grid_row(name)
    ref = CONBO[(alpha, name)]["std_upper"]
    assert conbo_std_upper(x[None, :], alpha)[0] == pytest.approx(ref, abs=1e-12)
    assert bound_rows([x], alpha=alpha).std_upper[0] <= ref


def test_not_looser_than_conbo_on_many_random_rows() -> None:
    """Ours <= conbo's on every row where conbo's is at least the band supremum (valid).

    Where conbo's value is smaller than ours, it is smaller than the sd of a distribution inside
    the band (ours is attained, see test_equals_the_lp_supremum): there conbo is not a valid
    band bound, and it only happens on rows with an atom at 0 (the mass conbo drops).
    """
    rng = np.random.default_rng(20250101)
    rows = {
        "beta": rng.beta(2, 5, size=(200, 64)),
        "uniform": rng.random((200, 256)),
        "u-shaped": rng.beta(0.5, 0.5, size=(200, 100)),
        "atom at 1": np.where(rng.random((200, 128)) < 0.4, 1.0, rng.beta(2, 2, (200, 128))),
        "atom at 0": np.where(rng.random((200, 128)) < 0.4, 0.0, rng.beta(2, 2, (200, 128))),
        "bernoulli": (rng.random((200, 256)) < 0.5).astype(float),
    }
    for name, x in rows.items():
        ours = bound_rows(x, alpha=0.05).std_upper
        conbo = conbo_std_upper(x, 0.05)
        looser = ours > conbo + 1e-12
        if (x == 0.0).any(axis=1).all():
            assert not looser[~(x == 0.0).any(axis=1)].any(), name
        else:
            assert not looser.any(), name
    # On Bernoulli(1/2) rows conbo falls below the true sd 0.5 in some rows: invalid, not tight.
    x = rows["bernoulli"]
    ours, conbo = bound_rows(x, alpha=0.05).std_upper, conbo_std_upper(x, 0.05)
    assert ((conbo < 0.5) & (ours == 0.5)).any()


def test_never_above_the_popoviciu_cap_and_never_above_one_half() -> None:
    rng = np.random.default_rng(9)
    for n in (1, 2, 10, 100):
        x = rng.beta(0.3, 3.0, size=(300, n))
        x[rng.random(x.shape) < 0.3] = 0.0
        xs = np.sort(x, axis=1)
        eps = dkw_epsilon(n, 0.05, two_sided=True)
        sd = bound_rows(x, alpha=0.05).std_upper
        assert (sd <= popoviciu_cap_sorted(xs, eps)).all()
        assert (sd <= 0.5).all() and (sd >= 0.0).all()


def test_all_equal_rows_have_a_positive_bound() -> None:
    # No draw varies, yet the band admits spread: the bound must not collapse to 0.
    t = bound_rows([[0.3] * 200, [0.0] * 200, [1.0] * 200], alpha=0.05)
    assert (t.std_upper > 0.1).all()
