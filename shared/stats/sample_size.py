"""How many draws per prompt a fixed-n question needs (the planner's statistics).

* ``certify_n``: the smallest n at which Clopper-Pearson's one-sided upper bound at 1 - alpha
  on P(leak) is below tau when at most ``leaks`` of the n draws leak. For zero leaks the upper
  bound is ``1 - alpha^(1/n)``, so n = floor(ln alpha / ln(1 - tau)) + 1 exactly (459 for
  tau = alpha = 0.01); for ``leaks`` >= 1 the bound is decreasing in n and n is found by search.
  Fewer draws can never certify with that many leaks; more leaks need more draws.
* ``leak_at_k_n``: certify leak@k < level, i.e. P(leak) < 1 - (1 - level)^(1/k) (leak@k is
  increasing in p), then ``certify_n``.
* ``mean_width_n``: the smallest n at which the two-sided Anderson/DKW interval on E[X] at
  1 - alpha (each side one-sided at alpha / 2) is at most ``width`` wide for ANY data: each side
  is within eps = sqrt(ln(2 / alpha) / (2 n)) of the sample mean, so the width is <= 2 eps.
  Found by search over n (the betting interval is usually narrower, but data-dependent).
"""

from __future__ import annotations

import math
from collections.abc import Callable

from shared.errors import InvalidInput
from shared.stats.binomial import clopper_pearson
from shared.stats.dkw import dkw_epsilon
from shared.stats.validation import check_alpha

MAX_PLANNED_N = 10**9


def _check_open_unit(value: float, name: str) -> float:
    if not (math.isfinite(value) and 0.0 < value < 1.0):
        raise InvalidInput(f"{name} is {value!r}; allowed: numbers in (0, 1)", param=name)
    return float(value)


def _check_plannable(n: float, what: str) -> None:
    if not n <= MAX_PLANNED_N:  # also inf from a tiny tau or width
        raise InvalidInput(
            f"{what} needs more than {MAX_PLANNED_N} draws per prompt", param="target"
        )


def _search(ok: Callable[[int], bool], start: int, what: str) -> int:
    """Smallest n >= start with ok(n), for ok monotone in n (False ... False True ...)."""
    if ok(start):
        return start
    lo, hi = start, start
    while not ok(hi):
        if hi >= MAX_PLANNED_N:
            raise InvalidInput(
                f"{what} needs more than {MAX_PLANNED_N} draws per prompt", param="target"
            )
        lo, hi = hi, min(2 * hi, MAX_PLANNED_N)
    while hi - lo > 1:  # invariant: not ok(lo), ok(hi)
        mid = (lo + hi) // 2
        if ok(mid):
            hi = mid
        else:
            lo = mid
    return hi


def certify_n(tau: float, *, alpha: float, leaks: int = 0) -> int:
    """Smallest n with Clopper-Pearson upper(leaks, n; alpha) < tau."""
    alpha = check_alpha(alpha)
    tau = _check_open_unit(tau, "tau")
    if leaks < 0:
        raise InvalidInput(f"leaks is {leaks}; allowed: integers >= 0", param="leaks")
    if leaks == 0:
        # 1 - alpha^(1/n) < tau  <=>  n > ln(alpha) / ln(1 - tau); check the rounding by search.
        log_keep = math.log1p(-tau)  # -0.0 for a subnormal tau
        exact = math.log(alpha) / log_keep if log_keep < 0.0 else math.inf
        _check_plannable(exact, f"certifying P(leak) < {tau}")
        start = max(1, math.floor(exact) + 1 - 2)
    else:
        start = leaks + 1

    def ok(n: int) -> bool:
        return bool(clopper_pearson(leaks, n, alpha=alpha).upper[0] < tau)

    return _search(ok, start, f"certifying P(leak) < {tau} with {leaks} leaks")


def leak_at_k_level_to_tau(level: float, k: int) -> float:
    """The P(leak) below which leak@k < level: 1 - (1 - level)^(1/k)."""
    return -math.expm1(math.log1p(-level) / k)


def leak_at_k_n(level: float, k: int, *, alpha: float, leaks: int = 0) -> int:
    """Smallest n whose Clopper-Pearson bound certifies leak@k < level with ``leaks`` leaks."""
    level = _check_open_unit(level, "level")
    if not (1 <= k <= 100_000):
        raise InvalidInput(f"k is {k}; allowed: integers in [1, 100000]", param="k")
    tau = leak_at_k_level_to_tau(level, k)
    if tau <= 0.0:  # a level so small that P(leak) would have to be below the smallest float
        raise InvalidInput(
            f"level is {level!r}: leak@{k} below it needs more than {MAX_PLANNED_N} draws",
            param="target",  # as every "needs more than" of the planner: the question is too big
        )
    return certify_n(tau, alpha=alpha, leaks=leaks)


def mean_width_n(width: float, *, alpha: float) -> int:
    """Smallest n with 2 * eps1(n, alpha / 2) <= width (two-sided Anderson interval, any data)."""
    alpha = check_alpha(alpha)
    width = _check_open_unit(width, "width")
    squared = width * width  # 0.0 for widths below ~1e-154
    exact = 2.0 * math.log(2.0 / alpha) / squared if squared > 0.0 else math.inf
    _check_plannable(exact, f"a mean interval of width {width}")
    guess = max(1, math.ceil(exact) - 2)

    def ok(n: int) -> bool:
        return 2.0 * dkw_epsilon(n, alpha / 2.0, two_sided=False) <= width

    return _search(ok, guess, f"a mean interval of width {width}")
