"""Clopper-Pearson bounds on P(X = 1) for rows of exact 0/1 scores (paper: M_bin)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from shared.errors import InvalidInput
from shared.stats.validation import check_alpha

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


@dataclass(frozen=True)
class BinomialBounds:
    """Per row: ``k`` successes of ``n``; one-sided bounds on p, each at level 1 - alpha."""

    k: IntArray
    n: IntArray
    lower: FloatArray
    upper: FloatArray


def clopper_pearson(k: ArrayLike, n: ArrayLike, *, alpha: float) -> BinomialBounds:
    """One-sided Clopper-Pearson bounds: each of ``lower`` and ``upper`` holds at 1 - alpha.

    upper = BetaInv(1 - alpha; k + 1, n - k) (1 when k = n);
    lower = BetaInv(alpha; k, n - k + 1) (0 when k = 0).
    For a two-sided interval at 1 - alpha pass alpha / 2.
    """
    alpha = check_alpha(alpha)
    k_arr = np.atleast_1d(np.asarray(k))
    n_arr = np.atleast_1d(np.asarray(n))
    if not (np.issubdtype(k_arr.dtype, np.integer) and np.issubdtype(n_arr.dtype, np.integer)):
        raise InvalidInput("k and n must be integers", param="k")
    k_arr, n_arr = np.broadcast_arrays(k_arr.astype(np.int64), n_arr.astype(np.int64))
    if (n_arr < 1).any():
        raise InvalidInput("n must be >= 1 in every row", param="n")
    if ((k_arr < 0) | (k_arr > n_arr)).any():
        i = int(np.argmax((k_arr < 0) | (k_arr > n_arr)))
        raise InvalidInput(f"k[{i}] = {k_arr[i]}; allowed: 0 <= k <= n", param=f"k[{i}]")
    # Imported here: scipy.special adds a few hundred ms to every `probeval bounds` start, and
    # only rows of exact 0/1 scores need it.
    from scipy.special import betaincinv

    kf = k_arr.astype(np.float64)
    nf = n_arr.astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        # Degenerate Beta parameters (b = 0 or a = 0) are exactly the k = n and k = 0 cases.
        upper = np.where(
            k_arr >= n_arr, 1.0, betaincinv(kf + 1.0, np.maximum(nf - kf, 1.0), 1.0 - alpha)
        )
        lower = np.where(k_arr <= 0, 0.0, betaincinv(np.maximum(kf, 1.0), nf - kf + 1.0, alpha))
    # For extreme alpha (about 1e-200) scipy's inverse can fail to converge and return NaN
    # (found by schemathesis through POST /v1/bounds). The trivial bounds 0 and 1 are still
    # valid at any level, so a failed inversion widens the bound instead of breaking the row.
    lower = np.where(np.isnan(lower), 0.0, lower)
    upper = np.where(np.isnan(upper), 1.0, upper)
    return BinomialBounds(k=k_arr, n=n_arr, lower=lower, upper=upper)
