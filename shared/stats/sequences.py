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
* ``binary_mixture_sequence``: Robbins' mixture martingale for 0/1 scores, by default with the
  Beta(1/2, 1/2) prior,
  ``M_t(p) = B(S_t + 1/2, t - S_t + 1/2) / (B(1/2, 1/2) p^S_t (1 - p)^(t - S_t))``, or with a
  threshold the threshold-tuned prior (``shared.stats.sequential.threshold_prior``);
  ``C_t = {p : M_t(p) < 1/alpha}``. The ends are found by bisection to 1e-12 and reported on the
  excluded side. No grid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from shared.errors import InvalidInput
from shared.stats.betting import TRUNCATION
from shared.stats.sequential import (
    JEFFREYS,
    BettingState,
    MixtureState,
    betting_update,
    mixture_update,
    threshold_prior,
)
from shared.stats.validation import check_alpha, check_score_matrix

FloatArray = NDArray[np.float64]


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
    """Hedged-capital confidence sequence for E[X] over the prefixes of one row of [0, 1] scores.

    Memory O(grid_size), not O(grid_size x n): the row is folded into an incremental
    ``BettingState`` 1,024 draws at a time.
    """
    alpha = check_alpha(alpha)
    if not (
        isinstance(grid_size, int) and not isinstance(grid_size, bool) and 2 <= grid_size <= 100_000
    ):
        raise InvalidInput(
            f"grid_size must be an integer in [2, 100000], got {grid_size!r}", param="grid_size"
        )
    row = _row(x, "x")
    _, lower, upper = betting_update(BettingState.start(grid_size), row, alpha, c)
    return ConfidenceSequence(lower=lower, upper=upper)


def binary_mixture_sequence(
    x: ArrayLike, *, alpha: float, threshold: float | None = None
) -> ConfidenceSequence:
    """Mixture confidence sequence for p = P(X = 1) over prefixes of a 0/1 row.

    Prior Beta(1/2, 1/2), or with ``threshold`` (in (0, 1), chosen before the data) the
    threshold-tuned prior a stopping rule with that threshold uses (``threshold_prior``).
    """
    alpha = check_alpha(alpha)
    row = _row(x, "x")
    not_binary = (row != 0.0) & (row != 1.0)
    if not_binary.any():
        j = int(np.argmax(not_binary))
        raise InvalidInput(f"x[{j}] is {float(row[j])!r}; allowed: exactly 0 or 1", param=f"x[{j}]")
    prior = JEFFREYS
    if threshold is not None:
        if not (isinstance(threshold, float | int) and 0.0 < float(threshold) < 1.0):
            raise InvalidInput(
                f"threshold is {threshold!r}; allowed: a number in (0, 1)", param="threshold"
            )
        prior = threshold_prior(float(threshold))
    _, lower, upper = mixture_update(MixtureState(prior=prior), row == 1.0, alpha)
    return ConfidenceSequence(lower=lower, upper=upper)
