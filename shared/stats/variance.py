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
Var(G_h) rises while g < 0 and falls after: the maximiser is ``h* = inf{h : g(h) >= 0}``. The
quantiles only jump at h = j/n +- eps, so a binary search over those ~2n levels (O(log n) steps,
each O(rows)) finds the piece, inside which g is linear and h* is solved for exactly. Atoms at
exactly 0 and 1 are part of U and L, so mass at the ends of [0, 1] is accounted for (the
reference library drops the one at 0).

The result never exceeds the Popoviciu cap ``max mu (1 - mu)`` over the two-sided Anderson mean
interval (every G_h has its mean inside it); we also apply the cap explicitly.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from shared.stats.dkw import anderson_lower_sorted, anderson_upper_sorted

FloatArray = NDArray[np.float64]


class _QuantileIntegrals:
    """C_1, C_2 and right-continuous Q_n for sorted rows, evaluated at one level per row."""

    def __init__(self, xs: FloatArray) -> None:
        self.xs = xs
        self.rows, self.n = xs.shape
        # Prefix sums with a leading 0 column, written in place (no concatenate copies).
        self.cum1 = np.empty((self.rows, self.n + 1))
        self.cum1[:, 0] = 0.0
        np.cumsum(xs, axis=1, out=self.cum1[:, 1:])
        self.cum1 /= self.n
        self.cum2 = np.empty((self.rows, self.n + 1))
        self.cum2[:, 0] = 0.0
        np.multiply(xs, xs, out=self.cum2[:, 1:])
        np.cumsum(self.cum2[:, 1:], axis=1, out=self.cum2[:, 1:])
        self.cum2 /= self.n
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


def _breakpoints(n: int, eps: float) -> FloatArray:
    """Levels h where Q_n(h - eps) or Q_n(h + eps) may jump: j/n +- eps, plus 0 and 1."""
    j = np.arange(n + 1, dtype=np.float64) / n
    h = np.concatenate([[0.0, 1.0], j + eps, j - eps])
    h = np.unique(h[(h >= 0.0) & (h <= 1.0)])
    return h


def band_variance_upper_sorted(xs: FloatArray, eps: float) -> FloatArray:
    """Exact ``sup Var_F`` over CDFs F with ``|F - F_n| <= eps`` on [0, 1], per sorted row."""
    rows, n = xs.shape
    qi = _QuantileIntegrals(xs)
    h = _breakpoints(n, eps)

    def g(level: FloatArray) -> FloatArray:
        s1, _s2 = _moments(qi, level, eps)
        return 0.5 * (qi.quantile_right(level - eps) + qi.quantile_right(level + eps)) - s1

    # Binary search over breakpoints for the last k with g(h_k) < 0 (g is non-decreasing);
    # k = -1 means g >= 0 from h = 0 on, so the maximiser is h = 0.
    lo = np.full(rows, -1, dtype=np.intp)
    hi = np.full(rows, h.size, dtype=np.intp)
    while True:
        open_ = hi - lo > 1
        if not open_.any():
            break
        mid = np.where(open_, (lo + hi) // 2, 0)
        neg = g(h[np.clip(mid, 0, h.size - 1)]) < 0.0
        lo = np.where(open_ & neg, mid, lo)
        hi = np.where(open_ & ~neg, mid, hi)
    k = np.clip(lo, 0, h.size - 1)
    left = h[k]
    right = h[np.minimum(k + 1, h.size - 1)]
    # Inside the piece both quantiles are constant, g is linear with slope q+ - q-, and the
    # maximiser is where it crosses 0 (or the right end, where g jumps over 0).
    centre = 0.5 * (left + right)
    q_minus = qi.quantile_right(centre - eps)
    q_plus = qi.quantile_right(centre + eps)
    slope = q_plus - q_minus
    g_left = 0.5 * (q_minus + q_plus) - _moments(qi, left, eps)[0]
    with np.errstate(divide="ignore", invalid="ignore"):
        cross = np.where(slope > 0.0, left - g_left / slope, right)
    star = np.where(lo < 0, 0.0, np.clip(cross, left, right))
    best = np.zeros(rows)
    # Var(G_h) is continuous in h: also take the piece's ends (and h = 0, 1 for degenerate
    # rows), so that rounding in locating the piece cannot cost the maximum.
    for level in (star, left, right, np.zeros(rows), np.ones(rows)):
        s1, s2 = _moments(qi, level, eps)
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
