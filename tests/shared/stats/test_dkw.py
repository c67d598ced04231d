"""Exact Anderson (M_mu), survival (M_gen) and quantile bounds from the DKW band."""

from __future__ import annotations

import math

import numpy as np
import pytest

from shared.stats import bound_rows, dkw_epsilon
from shared.stats.dkw import anderson_lower_sorted, anderson_upper_sorted
from tests.shared.stats.reference_values import CONBO, ROWS_ON_GRID, SURVIVAL_THRESHOLDS, grid_row

ALPHAS = (0.05, 0.01)


def note_formula_upper(x: np.ndarray, eps: float) -> float:
    """upper = 1 - sum_i (x_(i+1) - x_(i)) max(i/n - eps, 0), x_(n+1) = 1, as a plain loop."""
    xs = sorted(x.tolist()) + [1.0]
    n = len(x)
    return 1.0 - sum((xs[i] - xs[i - 1]) * max(i / n - eps, 0.0) for i in range(1, n + 1))


def test_epsilons_match_the_closed_forms() -> None:
    # Hand computation: sqrt(ln(2/0.01) / 2048) and sqrt(ln(1/0.01) / 2048).
    assert dkw_epsilon(1024, 0.01, two_sided=True) == pytest.approx(0.0508632, abs=1e-6)
    assert dkw_epsilon(1024, 0.01, two_sided=False) == pytest.approx(0.0474196, abs=1e-6)
    # Above alpha = 1/2 the one-sided width stays at the alpha = 1/2 value (Massart's range).
    assert dkw_epsilon(10, 0.8, two_sided=False) == dkw_epsilon(10, 0.5, two_sided=False)


@pytest.mark.parametrize("alpha", ALPHAS)
@pytest.mark.parametrize("name", sorted(ROWS_ON_GRID))
def test_expectation_matches_conbo_where_its_grid_is_exact(alpha: float, name: str) -> None:
    ref = CONBO[(alpha, name)]
    t = bound_rows([grid_row(name)], alpha=alpha)
    assert t.expectation_upper[0] == pytest.approx(ref["expectation_upper"], abs=1e-9)
    # conbo's lower bound uses a right Riemann sum (loose); its upper on 1 - x is exact.
    assert t.expectation_lower[0] == pytest.approx(1.0 - ref["reflected_upper"], abs=1e-9)


@pytest.mark.parametrize("alpha", ALPHAS)
@pytest.mark.parametrize("name", sorted(ROWS_ON_GRID))
def test_survival_matches_conbo(alpha: float, name: str) -> None:
    ref = CONBO[(alpha, name)]
    t = bound_rows([grid_row(name)], alpha=alpha, thresholds=SURVIVAL_THRESHOLDS)
    np.testing.assert_allclose(t.survival_upper[0], ref["survival_upper"], atol=1e-12)


def test_anderson_equals_the_order_statistic_formula_and_its_mirror() -> None:
    rng = np.random.default_rng(11)
    for n in (1, 2, 5, 64, 300):
        for _ in range(5):
            x = rng.beta(0.7, 1.3, size=n)
            x[rng.random(n) < 0.2] = 0.0
            x[rng.random(n) < 0.1] = 1.0
            eps = dkw_epsilon(n, 0.05, two_sided=False)
            xs = np.sort(x)[None, :]
            up = anderson_upper_sorted(xs, eps)[0]
            assert up == pytest.approx(min(note_formula_upper(x, eps), 1.0), abs=1e-12)
            # lower(x) = 1 - upper(1 - x)
            lo = anderson_lower_sorted(xs, eps)[0]
            assert lo == pytest.approx(1.0 - min(note_formula_upper(1.0 - x, eps), 1.0), abs=1e-12)


def test_anderson_on_binary_rows_is_hoeffding() -> None:
    # 0/1 scores: the band's extreme CDFs move eps of mass to 1 (or 0): mean +- eps1.
    x = np.array([1.0] * 30 + [0.0] * 70)
    t = bound_rows([x], alpha=0.05)
    eps = math.sqrt(math.log(1 / 0.05) / 200)
    assert t.expectation_upper[0] == pytest.approx(0.3 + eps, abs=1e-12)
    assert t.expectation_lower[0] == pytest.approx(0.3 - eps, abs=1e-12)


def test_exact_bound_is_tighter_than_conbos_grid_off_the_grid() -> None:
    from tests.shared.stats.conbo_construction import conbo_expectation

    rng = np.random.default_rng(5)
    x = rng.beta(2, 5, size=(50, 256))
    ours = bound_rows(x, alpha=0.05)
    lo, up = conbo_expectation(x, alpha=0.1)
    assert (ours.expectation_upper <= up + 1e-12).all()
    assert (ours.expectation_lower >= lo - 1e-12).all()
    assert (up - ours.expectation_upper).max() > 1e-3  # the grid costs up to 1/99


def test_edge_rows() -> None:
    t = bound_rows([[0.0], [1.0], [0.3] * 50, [0.0] * 40, [1.0] * 40], alpha=0.05,
                   thresholds=[0.0, 0.3, 1.0], quantiles=[0.0, 0.5, 1.0])  # fmt: skip
    # n = 1: eps1 = sqrt(ln 20 / 2) > 1, every bound is the trivial one.
    assert (t.expectation_lower[0], t.expectation_upper[0]) == (0.0, 1.0)
    assert (t.expectation_lower[1], t.expectation_upper[1]) == (0.0, 1.0)
    eps = dkw_epsilon(50, 0.05, two_sided=False)
    assert t.expectation_upper[2] == pytest.approx(0.3 + eps * 0.7, abs=1e-12)
    assert t.expectation_lower[2] == pytest.approx(0.3 * (1 - eps), abs=1e-12)
    # all-zero row: P(X > 0) <= eps, P(X > 1) = 0 + eps; the median is 0.
    e40 = dkw_epsilon(40, 0.05, two_sided=False)
    np.testing.assert_allclose(t.survival_upper[3], [e40, e40, e40])
    assert t.quantile_upper[3][1] == 0.0
    # q = 1 (or q + eps > 1) can only be bounded by the support: 1.
    assert t.quantile_upper[2][2] == 1.0


def test_quantile_upper_is_the_generalised_inverse_of_the_lower_band() -> None:
    rng = np.random.default_rng(3)
    for n in (1, 3, 17, 200):
        x = rng.random(n)
        levels = np.array([0.0, 0.1, 0.5, 0.9, 1.0])
        t = bound_rows([x], alpha=0.1, quantiles=levels)
        eps = dkw_epsilon(n, 0.1, two_sided=False)
        xs = np.sort(x)
        for q, got in zip(levels, t.quantile_upper[0], strict=True):
            # brute force: smallest candidate point c in {x_(i)} with F_n(c) - eps >= q, else 1
            ok = [c for c in xs if (xs <= c).mean() - eps >= q]
            assert got == (min(ok) if ok else 1.0)


def test_the_smallest_positive_alpha_gives_finite_valid_bounds() -> None:
    # Found by schemathesis against POST /v1/bounds: alpha = 5e-324 made 2 / alpha overflow, so
    # std.upper and ed.upper were NaN (null in JSON, outside the response schema). Every band is
    # then vacuous: the bounds are the trivial ones (sd <= 1/2 by Popoviciu, E[X] in [0, 1]).
    t = bound_rows([[0.0], [0.25, 0.75]], alpha=5e-324)
    for name in ("std_upper", "ed_upper", "expectation_lower", "expectation_upper"):
        assert np.isfinite(getattr(t, name)).all(), name
    assert (t.std_upper <= 0.5).all() and (t.expectation_upper == 1.0).all()
    assert dkw_epsilon(1, 5e-324, two_sided=True) > 1.0
