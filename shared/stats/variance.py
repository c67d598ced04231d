"""Upper bound on the variance (and sd) of X over every CDF inside the two-sided DKW band.

Why this is exact. Let U = min(F_n + eps, 1) and L = max(F_n - eps, 0) be the band's edges, as
distributions on [0, 1]: U puts an atom ``eps`` at 0, L an atom ``eps`` at 1. For a level h in
[0, 1] let G_h be the distribution whose quantile function is U's below h and L's above h (the
lowest h of the mass pushed left, the rest pushed right); G_h lies in the band. For a fixed centre
c, ``E_F[(X - c)^2]`` is linear in F and is maximised over the band by such a G_h, so by Sion's
minimax theorem ``sup_F Var_F = min_c sup_F E_F[(X - c)^2]`` is attained at a saddle point of the
form G_h: the supremum of the variance over the band is ``max_h Var(G_h)``.

With ``C_1(v) = int_0^v Q_n`` (Q_n the empirical quantile, extended by 0 below 0 and 1 above 1)
and ``C_2`` the same for Q_n^2:

    mean(G_h) = S_1(h) = C_1(h - eps) + C_1(1 + eps) - C_1(h + eps),   likewise S_2 with C_2,

and ``dVar/dh = -2 (q+ - q-) g(h)`` with ``q-+ = Q_n(h -+ eps)`` and
``g(h) = (q- + q+) / 2 - S_1(h)``. g is non-decreasing (both quantiles rise, S_1 falls), so
Var(G_h) rises while g < 0 and falls after: the maximiser is ``h* = inf{h : g(h) >= 0}``, found by
bisection on h (52 halvings, each O(rows)). Atoms at exactly 0 and 1 are part of U and L, so mass
at the ends of [0, 1] is accounted for (the reference library drops the one at 0).

The result never exceeds the Popoviciu cap ``max mu (1 - mu)`` over the two-sided Anderson mean
interval (every G_h has its mean inside it); we also apply the cap explicitly.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from shared.stats.dkw import anderson_lower_sorted, anderson_upper_sorted

FloatArray = NDArray[np.float64]

_BISECTIONS = 52  # halves [0, 1] down to 2**-52: below float spacing near 1


class _QuantileIntegrals:
    """C_1, C_2 and right-continuous Q_n for sorted rows, evaluated at one level per row."""

    def __init__(self, xs: FloatArray) -> None:
        self.xs = xs
        self.rows, self.n = xs.shape
        zeros = np.zeros((self.rows, 1))
        self.cum1 = np.concatenate([zeros, np.cumsum(xs, axis=1) / self.n], axis=1)
        self.cum2 = np.concatenate([zeros, np.cumsum(xs * xs, axis=1) / self.n], axis=1)
        self.idx = np.arange(self.rows)

    def _index(self, v: FloatArray) -> NDArray[np.intp]:
        vc = np.clip(v, 0.0, 1.0)
        j: NDArray[np.intp] = np.minimum(np.floor(vc * self.n).astype(np.intp), self.n - 1)
        return j

    def integrals(self, v: FloatArray) -> tuple[FloatArray, FloatArray]:
        """(C_1(v), C_2(v)) for one v per row, with Q_n = 0 below 0 and 1 above 1."""
        j = self._index(v)
        x_next = self.xs[self.idx, j]
        step = np.clip(v, 0.0, 1.0) - j / self.n
        c1 = self.cum1[self.idx, j] + step * x_next
        c2 = self.cum2[self.idx, j] + step * x_next * x_next
        above = np.maximum(v - 1.0, 0.0)
        c1 = np.where(v <= 0.0, 0.0, c1 + above)
        c2 = np.where(v <= 0.0, 0.0, c2 + above)
        return c1, c2

    def quantile_right(self, v: FloatArray) -> FloatArray:
        """Q_n(v+): 0 below 0, 1 from 1 on, else x_(floor(n v) + 1)."""
        j = self._index(v)
        q = self.xs[self.idx, j]
        return np.where(v < 0.0, 0.0, np.where(v >= 1.0, 1.0, q))


def _moments(qi: _QuantileIntegrals, h: FloatArray, eps: float) -> tuple[FloatArray, FloatArray]:
    """(mean, second moment) of G_h for one h per row."""
    lo1, lo2 = qi.integrals(h - eps)
    hi1, hi2 = qi.integrals(h + eps)
    top1 = qi.cum1[:, -1] + eps
    top2 = qi.cum2[:, -1] + eps
    return lo1 + top1 - hi1, lo2 + top2 - hi2


def band_variance_upper_sorted(xs: FloatArray, eps: float) -> FloatArray:
    """Exact ``sup Var_F`` over CDFs F with ``|F - F_n| <= eps`` on [0, 1], per sorted row."""
    rows = xs.shape[0]
    qi = _QuantileIntegrals(xs)
    lo = np.zeros(rows)
    hi = np.ones(rows)
    for _ in range(_BISECTIONS):
        mid = 0.5 * (lo + hi)
        s1, _s2 = _moments(qi, mid, eps)
        g = 0.5 * (qi.quantile_right(mid - eps) + qi.quantile_right(mid + eps)) - s1
        up = g >= 0.0
        hi = np.where(up, mid, hi)
        lo = np.where(up, lo, mid)
    best = np.zeros(rows)
    # Var(G_h) is continuous in h; take the larger of the two ends of the final bracket (and the
    # band's edges h = 0, 1, which covers degenerate rows) so rounding cannot pick the wrong one.
    for h in (lo, hi, np.zeros(rows), np.ones(rows)):
        s1, s2 = _moments(qi, h, eps)
        best = np.maximum(best, s2 - s1 * s1)
    return best


def popoviciu_cap_sorted(xs: FloatArray, eps: float) -> FloatArray:
    """``max sqrt(mu (1 - mu))`` over the two-sided Anderson interval for the mean."""
    lo = anderson_lower_sorted(xs, eps)
    hi = anderson_upper_sorted(xs, eps)
    at_half = (lo <= 0.5) & (hi >= 0.5)
    edge = np.maximum(lo * (1.0 - lo), hi * (1.0 - hi))
    cap: FloatArray = np.sqrt(np.where(at_half, 0.25, edge))
    return cap


def std_upper_sorted(xs: FloatArray, eps: float) -> FloatArray:
    """Upper bound on sd(X): sqrt of the band supremum of the variance, capped by Popoviciu."""
    var = np.maximum(band_variance_upper_sorted(xs, eps), 0.0)
    # A few ulps of slack so that rounding never lands below the exact supremum; the cap
    # (exact 0.5 when the mean interval contains 1/2) then removes it where it would show.
    var = var * (1.0 + 1e-12) + 1e-15
    sd: FloatArray = np.minimum(np.sqrt(var), popoviciu_cap_sorted(xs, eps))
    return sd
