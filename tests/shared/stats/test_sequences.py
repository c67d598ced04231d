"""Anytime-valid confidence sequences: Beta(1/2, 1/2) mixture and hedged-capital betting."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.optimize import brentq
from scipy.special import betaln

from shared.errors import InvalidInput
from shared.stats import betting_sequence, binary_mixture_sequence


def mixture_interval(s: int, t: int, alpha: float) -> tuple[float, float]:
    """Own reference: roots of log M_t(p) = log(1/alpha) by scipy's brentq."""

    def excess(p: float) -> float:
        loglik = (s * math.log(p) if s else 0.0) + ((t - s) * math.log1p(-p) if t - s else 0.0)
        return betaln(s + 0.5, t - s + 0.5) - betaln(0.5, 0.5) - loglik - math.log(1 / alpha)

    p_hat = s / t
    lo = 0.0 if s == 0 else brentq(excess, 1e-300, p_hat, xtol=1e-14)
    hi = 1.0 if s == t else brentq(excess, p_hat, 1 - 1e-16, xtol=1e-14)
    return lo, hi


def test_mixture_sequence_matches_brentq_roots() -> None:
    row = np.array([1, 0, 0, 1, 1, 0, 0, 0, 0, 1] * 6 + [0] * 40, dtype=float)
    alpha = 0.05
    cs = binary_mixture_sequence(row, alpha=alpha)
    raw = [mixture_interval(int(row[:t].sum()), t, alpha) for t in range(1, row.size + 1)]
    lo = np.maximum.accumulate([r[0] for r in raw])
    hi = np.minimum.accumulate([r[1] for r in raw])
    np.testing.assert_allclose(cs.lower, lo, atol=1e-10)
    np.testing.assert_allclose(cs.upper, hi, atol=1e-10)
    # Reported ends lie on the excluded side (up to brentq's own tolerance).
    assert (cs.lower <= lo + 1e-12).all() and (cs.upper >= hi - 1e-12).all()


def test_mixture_sequence_edges() -> None:
    zeros = binary_mixture_sequence(np.zeros(200), alpha=0.01)
    assert (zeros.lower == 0.0).all() and zeros.upper[-1] < 0.05
    ones = binary_mixture_sequence(np.ones(1), alpha=0.01)
    assert ones.upper[0] == 1.0 and ones.lower[0] == pytest.approx(0.01 / math.pi * math.pi / 2)


def test_betting_sequence_is_nested_and_conservative_on_its_grid() -> None:
    row = np.random.default_rng(8).beta(2, 5, size=400)
    coarse = betting_sequence(row, alpha=0.05, grid_size=200)
    fine = betting_sequence(row, alpha=0.05, grid_size=4000)
    assert (np.diff(coarse.lower) >= 0).all() and (np.diff(coarse.upper) <= 0).all()
    assert (coarse.lower <= fine.lower + 1e-12).all()
    assert (coarse.upper >= fine.upper - 1e-12).all()
    assert (fine.lower - coarse.lower).max() <= 1 / 200 + 1e-12
    assert coarse.lower[-1] < row.mean() < coarse.upper[-1]


def test_sequence_inputs_are_checked() -> None:
    with pytest.raises(InvalidInput, match=r"x\[2\] is 0.5; allowed: exactly 0 or 1"):
        binary_mixture_sequence([0, 1, 0.5], alpha=0.05)
    with pytest.raises(InvalidInput, match="1-D"):
        betting_sequence(np.zeros((2, 3)), alpha=0.05)
    with pytest.raises(InvalidInput, match="grid_size"):
        betting_sequence([0.1, 0.2], alpha=0.05, grid_size=1)
    with pytest.raises(InvalidInput, match=r"x\[0\]\[1\] is NaN"):
        betting_sequence([0.1, float("nan")], alpha=0.05)
    with pytest.raises(InvalidInput, match="alpha"):
        betting_sequence([0.1], alpha=0.0)
