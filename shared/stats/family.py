"""Family-wise error control over the prompts of a job: Bonferroni and Holm.

Both control the family-wise error rate (the chance of at least one false rejection among all
hypotheses) at alpha for p-values with ANY dependence (Holm 1979, "A simple sequentially
rejective multiple test procedure"). Holm rejects everything Bonferroni rejects, and often more.

* Bonferroni: reject H_i when p_i <= alpha / m; adjusted p-value min(1, m p_i).
* Holm: sort p_(1) <= ... <= p_(m); reject H_(1..j-1) where j is the first index with
  p_(j) > alpha / (m - j + 1); adjusted p-value max_{i <= j} min(1, (m - i + 1) p_(i)).
* none: reject H_i when p_i <= alpha (each decision at alpha on its own; no family statement).

A "leak" hypothesis for one prompt is H_i: P(leak) <= tau, with the exact binomial p-value
P(Binomial(n, tau) >= c) (the test dual to the Clopper-Pearson lower bound: the lower bound at
alpha exceeds tau exactly when this p-value is below alpha). With tau = 0 it is 0 when some draw
leaked and 1 otherwise: under P(leak) = 0 no draw can leak, so no correction is ever needed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from shared.errors import InvalidInput
from shared.stats.validation import check_alpha

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

Family = Literal["none", "bonferroni", "holm"]
FAMILIES: tuple[Family, ...] = ("none", "bonferroni", "holm")


@dataclass(frozen=True)
class FamilyDecisions:
    """Per hypothesis, in input order: reject or not, and the adjusted p-value."""

    method: Family
    alpha: float
    reject: BoolArray
    adjusted: FloatArray

    @property
    def rejected(self) -> int:
        return int(self.reject.sum())


def _check_pvalues(p: ArrayLike) -> FloatArray:
    arr = np.atleast_1d(np.asarray(p, dtype=np.float64))
    bad = ~(np.isfinite(arr) & (arr >= 0.0) & (arr <= 1.0))
    if bad.any():
        i = int(np.argmax(bad))
        raise InvalidInput(
            f"p[{i}] is {float(arr[i])!r}; allowed: numbers in [0, 1]", param=f"p[{i}]"
        )
    return arr


def decide(p: ArrayLike, *, alpha: float, method: str) -> FamilyDecisions:
    """Reject the hypotheses with p-values ``p`` under ``method`` at family-wise level alpha."""
    alpha = check_alpha(alpha)
    pv = _check_pvalues(p)
    m = pv.size
    if method == "none":
        return FamilyDecisions("none", alpha, pv <= alpha, pv.copy())
    if method == "bonferroni":
        adjusted = np.minimum(1.0, m * pv)
        return FamilyDecisions("bonferroni", alpha, pv <= alpha / m, adjusted)
    if method == "holm":
        order = np.argsort(pv, kind="stable")
        sorted_p = pv[order]
        factors = m - np.arange(m, dtype=np.float64)  # m, m - 1, ..., 1
        adjusted_sorted = np.maximum.accumulate(np.minimum(1.0, factors * sorted_p))
        passes = sorted_p <= alpha / factors
        # Step down: stop at the first hypothesis that fails its threshold.
        first_fail = int(np.argmin(passes)) if not passes.all() else m
        reject_sorted = np.arange(m) < first_fail
        reject = np.empty(m, dtype=bool)
        adjusted = np.empty(m)
        reject[order] = reject_sorted
        adjusted[order] = adjusted_sorted
        return FamilyDecisions("holm", alpha, reject, adjusted)
    raise InvalidInput(f"family is {method!r}; allowed: {', '.join(FAMILIES)}", param="family")


def binomial_pvalues_above(c: ArrayLike, n: ArrayLike, *, tau: float) -> FloatArray:
    """Exact p-values of H: p <= tau against p > tau: ``P(Binomial(n, tau) >= c)``."""
    if not (0.0 <= tau < 1.0):
        raise InvalidInput(f"leak_tau is {tau!r}; allowed: numbers in [0, 1)", param="leak_tau")
    from scipy.stats import binom

    c_arr = np.atleast_1d(np.asarray(c, dtype=np.int64))
    n_arr = np.atleast_1d(np.asarray(n, dtype=np.int64))
    if tau == 0.0:
        return np.where(c_arr >= 1, 0.0, 1.0)
    out: FloatArray = np.asarray(binom.sf(c_arr - 1, n_arr, tau), dtype=np.float64)
    return np.clip(out, 0.0, 1.0)
