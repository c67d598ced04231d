"""leak@k: the chance that k independent draws contain at least one leak.

With p = P(score >= leak_at) for one prompt, leak@k = 1 - (1 - p)^k.

* **Estimate.** With c leaking draws out of n, ``1 - C(n - c, k) / C(n, k)`` is the unbiased
  estimator of leak@k (the pass@k estimator of Chen et al. 2021: the chance that k draws taken
  without replacement from the n contain a leak). It exists only for k <= n: leak@k is a
  polynomial of degree k in p, and from n Bernoulli draws only polynomials of degree <= n have
  unbiased estimators. Above n the estimate is None (NaN in arrays); the bounds still exist.
  We compute it in exact integer arithmetic (``math.comb``, one correctly rounded division) up
  to n = EXACT_N, so there is no cancellation when the estimate is tiny; above, as a log-space
  product (``leak_at_k_estimate``).
* **Bounds.** leak@k is strictly increasing in p, so the one-sided Clopper-Pearson bounds on p
  (each at 1 - alpha, exact for fixed n) map onto one-sided bounds on leak@k at the same level:
  ``1 - (1 - p_lower)^k`` and ``1 - (1 - p_upper)^k``.
* **Mean over prompts.** The mean of leak@k over m prompts is bounded by the mean of the
  per-prompt bounds taken at alpha / m (Bonferroni): with probability >= 1 - alpha every
  prompt's bound holds at once, hence so does their mean. One-sided at 1 - alpha each side.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from shared.errors import InvalidInput
from shared.stats.binomial import clopper_pearson

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

MAX_K = 100_000  # the documented limit on k (and the planner's); C(n, k) stays cheap below it


def check_ks(ks: Sequence[int] | ArrayLike, *, name: str = "k") -> IntArray:
    """k values: integers in [1, MAX_K]."""
    arr = np.atleast_1d(np.asarray(ks))
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise InvalidInput(f"{name} must be integers in [1, {MAX_K}]", param=name)
    arr = arr.astype(np.int64)
    bad = (arr < 1) | (arr > MAX_K)
    if bad.any():
        i = int(np.argmax(bad))
        raise InvalidInput(
            f"{name}[{i}] is {int(arr[i])}; allowed: integers in [1, {MAX_K}]", param=f"{name}[{i}]"
        )
    return arr


EXACT_N = 10_000  # up to this n the estimate uses exact integers; above, a log-space sum


def leak_at_k_estimate(c: int, n: int, k: int) -> float | None:
    """Unbiased estimate ``1 - C(n - c, k) / C(n, k)``; None when k > n (no unbiased one exists)."""
    if not (0 <= c <= n and n >= 1 and k >= 1):
        raise InvalidInput(f"need 0 <= c <= n, n >= 1, k >= 1; got c={c}, n={n}, k={k}", param="k")
    if k > n:
        return None
    if c == 0:
        return 0.0
    if n - c < k:
        return 1.0  # every k-subset holds a leak
    if n <= EXACT_N:
        total = math.comb(n, k)
        # Exact numerator (no 1 - ratio cancellation); int / int is correctly rounded in Python.
        return (total - math.comb(n - c, k)) / total
    # C(n - c, k) / C(n, k) = prod_{i < k} (1 - c / (n - i)): each factor's log is accurate, so
    # the sum is to a few ulps per term, where C(500000, 100000) alone would take seconds.
    i = np.arange(k, dtype=np.float64)
    log_ratio = float(np.log1p(-c / (n - i)).sum())
    return float(-math.expm1(log_ratio))


def leak_at_k_from_p(p: ArrayLike, k: int | ArrayLike) -> FloatArray:
    """``1 - (1 - p)^k`` computed as ``-expm1(k log1p(-p))`` (accurate for tiny p)."""
    p_arr = np.asarray(p, dtype=np.float64)
    k_arr = np.asarray(k, dtype=np.float64)
    with np.errstate(divide="ignore"):
        out: FloatArray = -np.expm1(k_arr * np.log1p(-p_arr))
    return np.where(p_arr >= 1.0, 1.0, out)


@dataclass(frozen=True)
class LeakAtK:
    """Per row and k (shape ``(rows, len(ks))``): estimate (NaN when k > n) and one-sided bounds,
    each at 1 - alpha; ``c``/``n`` per row and the Clopper-Pearson bounds on p they come from."""

    ks: IntArray
    c: IntArray
    n: IntArray
    p_lower: FloatArray
    p_upper: FloatArray
    estimate: FloatArray
    lower: FloatArray
    upper: FloatArray


def leak_at_k(
    c: ArrayLike, n: ArrayLike, ks: Sequence[int] | ArrayLike, *, alpha: float
) -> LeakAtK:
    """leak@k estimates and exact one-sided bounds for rows of ``c`` leaks out of ``n`` draws."""
    k_arr = check_ks(ks)
    cp = clopper_pearson(c, n, alpha=alpha)
    est = np.array(
        [
            [
                np.nan if (e := leak_at_k_estimate(int(ci), int(ni), int(k))) is None else e
                for k in k_arr
            ]
            for ci, ni in zip(cp.k, cp.n, strict=True)
        ],
        dtype=np.float64,
    ).reshape(cp.k.size, k_arr.size)
    return LeakAtK(
        ks=k_arr,
        c=cp.k,
        n=cp.n,
        p_lower=cp.lower,
        p_upper=cp.upper,
        estimate=est,
        lower=leak_at_k_from_p(cp.lower[:, None], k_arr[None, :]),
        upper=leak_at_k_from_p(cp.upper[:, None], k_arr[None, :]),
    )


@dataclass(frozen=True)
class MeanLeakAtK:
    """Per k: mean over rows of the estimate (NaN if any row has k > n) and one-sided bounds on
    the mean of leak@k over the rows, each at 1 - alpha (Bonferroni over rows)."""

    ks: IntArray
    estimate: FloatArray
    lower: FloatArray
    upper: FloatArray


def mean_leak_at_k(
    c: ArrayLike, n: ArrayLike, ks: Sequence[int] | ArrayLike, *, alpha: float
) -> MeanLeakAtK:
    """Bounds on the average leak@k over m prompts: per-prompt bounds at alpha / m, averaged."""
    c_arr = np.atleast_1d(np.asarray(c))
    m = c_arr.size
    if m == 0:
        raise InvalidInput("no rows; allowed: at least one row", param="scores")
    per_row = leak_at_k(c_arr, n, ks, alpha=alpha / m)  # the estimate does not use alpha
    return MeanLeakAtK(
        ks=per_row.ks,
        estimate=per_row.estimate.mean(axis=0),
        lower=per_row.lower.mean(axis=0),
        upper=per_row.upper.mean(axis=0),
    )
