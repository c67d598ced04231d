"""Anytime-valid confidence sequences: bounds after every prefix of a row, valid at all n at once.

Fixed-n bounds (Clopper-Pearson, DKW, Anderson, the betting interval) are invalid when n is chosen
by looking at the data ("stop once the bound clears the threshold"). A confidence sequence
C_1, C_2, ... satisfies P(E[X] in C_t for every t) >= 1 - alpha, so sampling may stop at any
data-dependent time. Both sequences here are reported as running intersections (the bound after t
draws is the tightest seen so far), which Ville's inequality allows.

* ``betting_sequence``: Waudby-Smith & Ramdas (JRSSB 2024) hedged capital with the predictable
  plug-in bets of the confidence-sequence version,
  ``lambda_t = sqrt(2 ln(2/alpha) / (sigma2_{t-1} t ln(1 + t)))``, truncated at c/m and
  c/(1 - m) with c = 1/2. Evaluated on the grid m = j / grid_size; an end is reported as the last
  rejected grid point next to the first non-rejected one, which is conservative by at most
  1 / grid_size.
* ``binary_mixture_sequence``: Robbins' Beta(1/2, 1/2) mixture martingale for 0/1 scores,
  ``M_t(p) = B(S_t + 1/2, t - S_t + 1/2) / (B(1/2, 1/2) p^S_t (1 - p)^(t - S_t))``;
  ``C_t = {p : M_t(p) < 1/alpha}``. The ends are found by bisection to 1e-12 and reported on the
  excluded side. No grid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from shared.errors import InvalidInput
from shared.stats.betting import TRUNCATION, predictable_variances
from shared.stats.validation import check_alpha, check_score_matrix

FloatArray = NDArray[np.float64]

_BISECTIONS = 60


@dataclass(frozen=True)
class ConfidenceSequence:
    """Two-sided bounds on the mean after each prefix: ``lower[t-1]``, ``upper[t-1]`` use t draws.

    Jointly over all t: P(lower[t] <= E[X] <= upper[t] for every t) >= 1 - alpha.
    """

    lower: FloatArray
    upper: FloatArray


def _row(x: ArrayLike, name: str) -> FloatArray:
    arr = np.asarray(x, dtype=np.float64) if not isinstance(x, np.ndarray) else x
    if arr.ndim != 1:
        raise InvalidInput(f"{name} must be one row (a 1-D sequence of scores)", param=name)
    row: FloatArray = check_score_matrix(arr, name=name)[0]
    return row


def betting_sequence(
    x: ArrayLike, *, alpha: float, grid_size: int = 1000, c: float = TRUNCATION
) -> ConfidenceSequence:
    """Hedged-capital confidence sequence for E[X] over the prefixes of one row of [0, 1] scores."""
    alpha = check_alpha(alpha)
    if not (isinstance(grid_size, int) and 2 <= grid_size <= 100_000):
        raise InvalidInput(
            f"grid_size must be an integer in [2, 100000], got {grid_size!r}", param="grid_size"
        )
    row = _row(x, "x")
    n = row.size
    t = np.arange(1, n + 1, dtype=np.float64)
    sigma2 = predictable_variances(row[None, :])[0]
    lam = np.sqrt(2.0 * math.log(2.0 / alpha) / (sigma2 * t * np.log1p(t)))
    level = math.log(2.0 / alpha)
    grid = np.arange(grid_size + 1, dtype=np.float64) / grid_size

    def rejected_prefix_counts(values: FloatArray) -> FloatArray:
        # log K+_t(m) for every grid m (rows) and prefix t (columns), as a running maximum.
        with np.errstate(divide="ignore"):
            cap = np.where(grid > 0.0, c / grid, np.inf)[:, None]
        bet = np.minimum(lam[None, :], cap)
        log_k = np.cumsum(np.log1p(bet * (values[None, :] - grid[:, None])), axis=1)
        np.maximum.accumulate(log_k, axis=1, out=log_k)
        rejected = log_k >= level  # a prefix of the grid for each t: K+ falls as m rises
        first_open = np.argmin(rejected, axis=0).astype(np.float64)
        first_open[rejected.all(axis=0)] = grid_size + 1.0
        # The last rejected grid point sits just below the first open one: conservative.
        ends: FloatArray = np.maximum(first_open - 1.0, 0.0) / grid_size
        return ends

    lower = rejected_prefix_counts(row)
    upper = 1.0 - rejected_prefix_counts(1.0 - row)  # K-(m) on X is K+(1 - m) on 1 - X
    return ConfidenceSequence(
        lower=np.maximum.accumulate(lower), upper=np.minimum.accumulate(upper)
    )


def binary_mixture_sequence(x: ArrayLike, *, alpha: float) -> ConfidenceSequence:
    """Beta(1/2, 1/2)-mixture confidence sequence for p = P(X = 1) over prefixes of a 0/1 row."""
    alpha = check_alpha(alpha)
    row = _row(x, "x")
    not_binary = (row != 0.0) & (row != 1.0)
    if not_binary.any():
        j = int(np.argmax(not_binary))
        raise InvalidInput(f"x[{j}] is {float(row[j])!r}; allowed: exactly 0 or 1", param=f"x[{j}]")
    from scipy.special import betaln  # a few hundred ms of import; only this function needs it

    n = row.size
    t = np.arange(1, n + 1, dtype=np.float64)
    s = np.cumsum(row)
    f = t - s
    # p is in C_t iff S log p + F log(1 - p) > log B(S + 1/2, F + 1/2) - log B(1/2, 1/2) + log a.
    threshold = betaln(s + 0.5, f + 0.5) - betaln(0.5, 0.5) + math.log(alpha)
    p_hat = s / t

    def loglik(p: FloatArray) -> FloatArray:
        with np.errstate(divide="ignore", invalid="ignore"):
            a = np.where(s > 0.0, s * np.log(p), 0.0)
            b = np.where(f > 0.0, f * np.log1p(-p), 0.0)
        return np.asarray(a + b)

    def boundary(inside: FloatArray, outside: FloatArray) -> FloatArray:
        # loglik is concave with its maximum at p_hat (inside); keep `outside` excluded.
        for _ in range(_BISECTIONS):
            mid = 0.5 * (inside + outside)
            keep = loglik(mid) > threshold
            inside = np.where(keep, mid, inside)
            outside = np.where(keep, outside, mid)
        return outside

    zeros, ones = np.zeros(n), np.ones(n)
    lower = np.where(loglik(zeros) > threshold, 0.0, boundary(p_hat.copy(), zeros))
    upper = np.where(loglik(ones) > threshold, 1.0, boundary(p_hat.copy(), ones))
    return ConfidenceSequence(
        lower=np.maximum.accumulate(lower), upper=np.minimum.accumulate(upper)
    )
