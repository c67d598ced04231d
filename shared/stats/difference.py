"""Per-prompt intervals on the difference between two jobs (b - a), and the decisions they give.

The two jobs' draws are independent samples (different models or decoding setups, or the same
one run twice). For each prompt and target (the mean score, P(leak), or leak@k = g(P(leak)) with
g increasing) we combine one-sided fixed-n bounds of each job:

* **Interval.** ``[L_b - U_a, U_b - L_a]`` with each of the four one-sided bounds at alpha / 4.
  It holds with probability >= 1 - alpha by a union bound over the four events (no assumption
  on how the two jobs relate other than each job's draws being i.i.d.). Bounds: Clopper-Pearson
  for P(leak) (exact), mapped through g for leak@k; Anderson's DKW bound for the mean (exact
  order-statistic form, ``shared.stats.dkw``).
* **Decision.** "b lower" when the interval lies below 0, "b higher" when above, else "no
  difference shown". Whatever the truth, the chance of a wrong claim is <= alpha.
* **p-values.** ``p_lower = inf{alpha : U_b(alpha / 4) < L_a(alpha / 4)}`` (and the mirror
  ``p_higher``): the smallest level at which the interval excludes 0 on that side, found by
  bisection on log alpha and reported on the conservative side of the bracket. Under
  "b >= a", ``P(p_lower <= alpha) <= alpha / 2``, so ``p_lower / 2`` is a valid one-sided
  p-value; ``shared.stats.family`` controls the 2m one-sided claims of m prompts with them
  (Bonferroni over 2m claims at alpha equals the per-prompt interval at alpha / m).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from shared.errors import InvalidInput
from shared.stats.family import decide
from shared.stats.rows import RowsLike, group_rows
from shared.stats.validation import check_alpha

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]

# alpha -> (lower, upper), one alpha per prompt, each bound one-sided at that alpha.
BoundsFn = Callable[[FloatArray], tuple[FloatArray, FloatArray]]

_BISECTIONS = 56
_SMALLEST_ALPHA = 1e-300


def proportion_bounds(c: ArrayLike, n: ArrayLike) -> BoundsFn:
    """Clopper-Pearson one-sided bounds on p for counts ``c`` of ``n``, per-prompt alpha."""
    from scipy.special import betaincinv

    c_arr = np.atleast_1d(np.asarray(c, dtype=np.float64))
    n_arr = np.atleast_1d(np.asarray(n, dtype=np.float64))

    def bounds(alpha: FloatArray) -> tuple[FloatArray, FloatArray]:
        with np.errstate(invalid="ignore", divide="ignore"):
            upper = np.where(
                c_arr >= n_arr,
                1.0,
                betaincinv(c_arr + 1.0, np.maximum(n_arr - c_arr, 1.0), 1.0 - alpha),
            )
            lower = np.where(
                c_arr <= 0, 0.0, betaincinv(np.maximum(c_arr, 1.0), n_arr - c_arr + 1.0, alpha)
            )
        return lower, upper

    return bounds


def mean_bounds(rows: RowsLike, *, name: str = "scores") -> tuple[BoundsFn, FloatArray]:
    """Anderson/DKW one-sided bounds on E[X] per row, per-row alpha; also the sample means."""
    lengths, groups = group_rows(rows, name)
    sorted_groups = [(idx, np.sort(x, axis=1)) for idx, x in groups]
    means = np.empty(lengths.size)
    for idx, x in groups:
        means[idx] = x.mean(axis=1)

    def bounds(alpha: FloatArray) -> tuple[FloatArray, FloatArray]:
        lower = np.empty(lengths.size)
        upper = np.empty(lengths.size)
        for idx, xs in sorted_groups:
            n = xs.shape[1]
            # One-sided DKW (Massart) width per row; alpha above 1/2 uses the 1/2 width.
            eps = np.sqrt(np.log(1.0 / np.minimum(alpha[idx], 0.5)) / (2.0 * n))[:, None]
            i = np.arange(1, n + 1, dtype=np.float64)[None, :]
            w_up = np.clip(i / n - eps, 0.0, 1.0 / n)
            w_lo = np.clip(1.0 - eps - (i - 1.0) / n, 0.0, 1.0 / n)
            up = np.minimum((xs * w_up).sum(axis=1) + np.minimum(eps[:, 0], 1.0), 1.0)
            lo = np.maximum((xs * w_lo).sum(axis=1), 0.0)
            upper[idx] = np.maximum(up, means[idx])
            lower[idx] = np.minimum(lo, means[idx])
        return lower, upper

    return bounds, means


def _first_level(
    a: BoundsFn, b: BoundsFn, m: int, transform: Callable[[FloatArray], FloatArray], below: bool
) -> FloatArray:
    """Smallest alpha (conservatively) at which the difference interval excludes 0 on one side."""

    def excluded(alpha: FloatArray) -> BoolArray:
        la, ua = a(alpha / 4.0)
        lb, ub = b(alpha / 4.0)
        if below:
            out: BoolArray = transform(ub) < transform(la)
        else:
            out = transform(lb) > transform(ua)
        return out

    hi = np.ones(m)
    never = ~excluded(hi)
    lo = np.full(m, _SMALLEST_ALPHA)
    log_lo, log_hi = np.log(lo), np.log(hi)
    for _ in range(_BISECTIONS):
        mid = np.exp(0.5 * (log_lo + log_hi))
        ok = excluded(mid)
        log_hi = np.where(ok, np.log(mid), log_hi)
        log_lo = np.where(ok, log_lo, np.log(mid))
    p = np.exp(log_hi)
    return np.where(never, 1.0, np.minimum(p, 1.0))


Decision = Literal["b lower", "b higher", "no difference shown"]


@dataclass(frozen=True)
class DifferenceTable:
    """Per prompt: the estimates of a, b and b - a, the interval at the family's simultaneous level
    (``interval_alpha``: alpha, or alpha / m for bonferroni and holm), one-sided p-values of the
    two claims, the adjusted p-value of the claim made, and the decision."""

    family: str
    alpha: float
    interval_alpha: float
    estimate_a: FloatArray
    estimate_b: FloatArray
    estimate: FloatArray
    lower: FloatArray
    upper: FloatArray
    p_lower: FloatArray
    p_higher: FloatArray
    adjusted: FloatArray
    decisions: list[Decision]

    @property
    def b_lower(self) -> int:
        return sum(1 for d in self.decisions if d == "b lower")

    @property
    def b_higher(self) -> int:
        return sum(1 for d in self.decisions if d == "b higher")


def _identity(x: FloatArray) -> FloatArray:
    return x


def difference_table(
    a: BoundsFn,
    b: BoundsFn,
    estimate_a: FloatArray,
    estimate_b: FloatArray,
    *,
    alpha: float,
    family: str,
    transform: Callable[[FloatArray], FloatArray] = _identity,
) -> DifferenceTable:
    """Intervals on b - a per prompt and family-wise decisions (see the module docstring)."""
    alpha = check_alpha(alpha)
    m = int(np.asarray(estimate_a).size)
    if m == 0:
        raise InvalidInput("no prompts to compare; allowed: at least one", param="a")
    p_lower = _first_level(a, b, m, transform, below=True)
    p_higher = _first_level(a, b, m, transform, below=False)
    if family == "none":
        reject_lower, reject_higher = p_lower <= alpha, p_higher <= alpha
        adjusted_lower, adjusted_higher = p_lower, p_higher
        interval_alpha = alpha
    else:
        # 2m one-sided claims with the valid one-sided p-values p / 2 (module docstring).
        res = decide(np.concatenate([p_lower, p_higher]) / 2.0, alpha=alpha, method=family)
        reject_lower, reject_higher = res.reject[:m], res.reject[m:]
        adjusted_lower, adjusted_higher = res.adjusted[:m], res.adjusted[m:]
        interval_alpha = alpha / m
    level = np.full(m, interval_alpha / 4.0)
    la, ua = a(level)
    lb, ub = b(level)
    lower = transform(lb) - transform(ua)
    upper = transform(ub) - transform(la)
    decisions: list[Decision] = []
    adjusted = np.empty(m)
    for i in range(m):
        # Both claims cannot be made at once: the interval cannot lie on both sides of 0.
        if reject_lower[i]:
            decisions.append("b lower")
            adjusted[i] = adjusted_lower[i]
        elif reject_higher[i]:
            decisions.append("b higher")
            adjusted[i] = adjusted_higher[i]
        else:
            decisions.append("no difference shown")
            adjusted[i] = min(adjusted_lower[i], adjusted_higher[i])
    return DifferenceTable(
        family=family,
        alpha=alpha,
        interval_alpha=interval_alpha,
        estimate_a=np.asarray(estimate_a, dtype=np.float64),
        estimate_b=np.asarray(estimate_b, dtype=np.float64),
        estimate=np.asarray(estimate_b, dtype=np.float64)
        - np.asarray(estimate_a, dtype=np.float64),
        lower=lower,
        upper=upper,
        p_lower=p_lower,
        p_higher=p_higher,
        adjusted=adjusted,
        decisions=decisions,
    )


def compare_rows(
    rows_a: RowsLike,
    rows_b: RowsLike,
    *,
    target: str,
    alpha: float,
    family: str,
    leak_at: float = 1.0,
    k: int = 10,
) -> DifferenceTable:
    """The difference table for two aligned lists of score rows (row i = prompt i in both)."""
    if len(rows_a) != len(rows_b):
        raise InvalidInput(
            f"the two sides have {len(rows_a)} and {len(rows_b)} rows; allowed: the same prompts",
            param="b",
        )
    if target == "mean":
        fa, mean_a = mean_bounds(rows_a, name="a")
        fb, mean_b = mean_bounds(rows_b, name="b")
        return difference_table(fa, fb, mean_a, mean_b, alpha=alpha, family=family)
    if target not in ("p_full", "leak@k"):
        raise InvalidInput(f"target is {target!r}; allowed: mean, p_full, leak@k", param="target")
    ca, na = _leak_counts(rows_a, leak_at, "a")
    cb, nb = _leak_counts(rows_b, leak_at, "b")
    if target == "p_full":
        return difference_table(
            proportion_bounds(ca, na), proportion_bounds(cb, nb), ca / na, cb / nb,
            alpha=alpha, family=family,
        )  # fmt: skip
    from shared.stats.leak import check_ks, leak_at_k_estimate, leak_at_k_from_p

    kk = int(check_ks([k])[0])

    def g(p: FloatArray) -> FloatArray:
        return leak_at_k_from_p(p, kk)

    def unbiased(c: FloatArray, n: FloatArray) -> FloatArray:
        # The unbiased estimate where it exists (k <= n), else the plug-in g(c / n).
        est = [leak_at_k_estimate(int(ci), int(ni), kk) for ci, ni in zip(c, n, strict=True)]
        return np.array([g(np.array(ci / ni)) if e is None else e
                         for e, ci, ni in zip(est, c, n, strict=True)], dtype=np.float64)  # fmt: skip

    return difference_table(
        proportion_bounds(ca, na), proportion_bounds(cb, nb), unbiased(ca, na), unbiased(cb, nb),
        alpha=alpha, family=family, transform=g,
    )  # fmt: skip


def _leak_counts(rows: RowsLike, leak_at: float, name: str) -> tuple[FloatArray, FloatArray]:
    lengths, groups = group_rows(rows, name)
    c = np.empty(lengths.size)
    for idx, x in groups:
        c[idx] = np.count_nonzero(x >= leak_at, axis=1)
    return c, lengths.astype(np.float64)
