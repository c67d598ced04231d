"""Bounds read off the Dvoretzky-Kiefer-Wolfowitz band around the empirical CDF.

All functions here take rows that are already sorted ascending (``xs``, shape ``(rows, n)``, one
common ``n``); ``shared.stats.rows`` sorts once and calls them. Public wrappers that accept
unsorted scores live in ``shared.stats.rows``.

Band conventions (n draws, error level alpha):

* two-sided: ``|F_n - F| <= eps2`` everywhere, ``eps2 = sqrt(ln(2 / alpha) / (2 n))``;
* one-sided: ``F >= F_n - eps1`` everywhere (or the mirror), ``eps1 = sqrt(ln(1 / alpha) / (2 n))``.

Massart (1990) proves the one-sided inequality for ``alpha <= 1/2``, the only levels
``check_alpha`` accepts. Bounds that use the same side of the same band hold
jointly (no union bound): survival uppers, quantile uppers and the expectation upper all rest on
the event ``F >= F_n - eps1``.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]


def dkw_epsilon(n: int, alpha: float, *, two_sided: bool) -> float:
    """Half-width of the DKW band for ``n`` draws at error level ``alpha``."""
    # log(2) - log(alpha), not log(2 / alpha): 2 / alpha overflows to inf for the smallest
    # positive floats (alpha = 5e-324), which made every band-based bound NaN.
    if two_sided:
        return math.sqrt((math.log(2.0) - math.log(alpha)) / (2.0 * n))
    # Massart's one-sided constant is proven for alpha <= 1/2 only (callers check alpha).
    return math.sqrt(-math.log(min(alpha, 0.5)) / (2.0 * n))


def _upper_weights(n: int, eps: float) -> FloatArray:
    """Mass the band's lowest CDF, ``max(F_n - eps, 0)``, puts on x_(1..n); the rest sits at 1."""
    i = np.arange(1, n + 1, dtype=np.float64)
    return np.clip(i / n - eps, 0.0, 1.0 / n)


def _lower_weights(n: int, eps: float) -> FloatArray:
    """Mass the band's highest CDF, ``min(F_n + eps, 1)``, puts on x_(1..n); the rest sits at 0."""
    i = np.arange(1, n + 1, dtype=np.float64)
    return np.clip(1.0 - eps - (i - 1.0) / n, 0.0, 1.0 / n)


def anderson_upper_sorted(xs: FloatArray, eps: float) -> FloatArray:
    """Anderson's upper bound on E[X]: the mean of the lowest CDF in the band, exactly.

    Equals ``1 - sum_i (x_(i+1) - x_(i)) * max(i/n - eps, 0)`` with ``x_(n+1) = 1``.
    """
    n = xs.shape[1]
    # einsum's own loop, not a BLAS matmul: a row's result must not depend on its batch, and
    # no (rows, n) temporary is allocated.
    out: FloatArray = np.einsum("ij,j->i", xs, _upper_weights(n, eps), optimize=False)
    out += min(eps, 1.0)
    return np.minimum(out, 1.0)


def anderson_lower_sorted(xs: FloatArray, eps: float) -> FloatArray:
    """Anderson's lower bound on E[X]: the mean of the highest CDF in the band, exactly."""
    n = xs.shape[1]
    out: FloatArray = np.einsum("ij,j->i", xs, _lower_weights(n, eps), optimize=False)
    return np.maximum(out, 0.0)


def survival_upper_sorted(xs: FloatArray, thresholds: FloatArray, eps: float) -> FloatArray:
    """Upper bounds on P(X > x) for each threshold: ``min(1, (#{X_i > x}) / n + eps)``.

    Returns shape ``(rows, len(thresholds))``.
    """
    n = xs.shape[1]
    out = np.empty((xs.shape[0], thresholds.size), dtype=np.float64)
    for j, t in enumerate(thresholds):
        out[:, j] = np.count_nonzero(xs > t, axis=1)
    out /= n
    out += eps
    np.minimum(out, 1.0, out=out)
    return out


def quantile_upper_sorted(xs: FloatArray, levels: FloatArray, eps: float) -> FloatArray:
    """Upper bounds on the q-quantile ``inf{x : F(x) >= q}``: ``x_(ceil(n (q + eps)))``, or 1.

    On the event ``F >= F_n - eps``, ``F(x_(k)) >= k/n - eps >= q`` for ``k = ceil(n (q + eps))``.
    Returns shape ``(rows, len(levels))``.
    """
    n = xs.shape[1]
    out = np.ones((xs.shape[0], levels.size), dtype=np.float64)
    for j, q in enumerate(levels):
        k = math.ceil(n * (float(q) + eps))
        if k <= n:
            out[:, j] = xs[:, max(k, 1) - 1]
    return out
