"""Exact fixed-n bounds from order statistics and binomial counts, for a question fixed before
sampling (one threshold, one quantile level): tighter than reading them off the DKW band, which
pays for holding at every threshold at once.

* ``survival_cp_sorted``: Clopper-Pearson on P(X > x) from the count #{X_i > x}, which is
  Binomial(n, P(X > x)): exact, one-sided at 1 - alpha each, for each threshold separately.
* ``quantile_lower_sorted``: a lower bound on the q-quantile Q(q) = inf{x : F(x) >= q}. With
  j - 1 the largest i such that P(Binomial(n, q) <= i) <= alpha, the order statistic x_(j)
  (0 when there is no such i): x_(j) > Q(q) means at most j - 1 draws are <= Q(q), and their
  number is Binomial(n, F(Q(q))) with F(Q(q)) >= q, so this happens with probability <= alpha.
  One-sided at 1 - alpha for each level separately; no continuity assumption.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from shared.stats.binomial import clopper_pearson

FloatArray = NDArray[np.float64]


def survival_cp_sorted(
    xs: FloatArray, thresholds: FloatArray, alpha: float
) -> tuple[FloatArray, FloatArray]:
    """(lower, upper) Clopper-Pearson bounds on P(X > x), shape ``(rows, len(thresholds))``."""
    rows, n = xs.shape
    lower = np.empty((rows, thresholds.size))
    upper = np.empty((rows, thresholds.size))
    for j, t in enumerate(thresholds):
        above = np.count_nonzero(xs > t, axis=1).astype(np.int64)
        cp = clopper_pearson(above, np.full(rows, n, dtype=np.int64), alpha=alpha)
        lower[:, j], upper[:, j] = cp.lower, cp.upper
    return lower, upper


def _lower_rank(n: int, q: float, alpha: float) -> int:
    """j = 1 + the largest i with P(Binomial(n, q) <= i) <= alpha (0 when none)."""
    from scipy.stats import binom

    i = int(binom.ppf(alpha, n, q))  # smallest i with cdf(i) >= alpha
    # Exact ties cdf(i) == alpha keep i; otherwise the largest i with cdf(i) <= alpha is i - 1.
    if binom.cdf(i, n, q) > alpha:
        i -= 1
    return max(i, -1) + 1


def quantile_lower_sorted(xs: FloatArray, levels: FloatArray, alpha: float) -> FloatArray:
    """Lower bounds on each q-quantile, shape ``(rows, len(levels))``."""
    rows, n = xs.shape
    out = np.zeros((rows, levels.size))
    for j, q in enumerate(levels):
        rank = _lower_rank(n, float(q), alpha)
        if rank >= 1:
            out[:, j] = xs[:, rank - 1]
    return out
