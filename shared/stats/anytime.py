"""Bounds that stay valid at a data-dependent stopping time: read off a time-uniform DKW band.

Fixed-n DKW (Massart) holds at one n fixed in advance. Howard & Ramdas (2022, Bernoulli 28(3),
Theorem 2) give a band that holds at every n at once,
``sup_x |F_n(x) - F(x)| <= eps_n`` for all n >= 1 with probability >= 1 - alpha
(``shared.stats.sequential.uniform_dkw_epsilon``), so everything read off it at the stopping
time is valid under optional stopping: Anderson's mean bounds, the band's sd upper bound (capped
by Popoviciu), mean + lambda sd, survival and quantile uppers. One two-sided band: all of them
hold jointly at 1 - alpha.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from shared.stats.dkw import (
    anderson_lower_sorted,
    anderson_upper_sorted,
    quantile_upper_sorted,
    survival_upper_sorted,
)
from shared.stats.sequential import uniform_dkw_epsilon
from shared.stats.variance import std_upper_sorted

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class AnytimeRow:
    """Bounds from the time-uniform band for one row of n draws."""

    n: int
    epsilon: float
    mean: float
    expectation_lower: float
    expectation_upper: float
    std_upper: float
    ed_upper: float
    survival_upper: FloatArray  # one per threshold
    quantile_upper: FloatArray  # one per level


def anytime_row(
    row: FloatArray,
    *,
    alpha: float,
    thresholds: FloatArray,
    quantiles: FloatArray,
    ed_lambda: float,
) -> AnytimeRow:
    """Band bounds for one validated row (scores in [0, 1], any order; alpha checked)."""
    n = int(row.size)
    eps = uniform_dkw_epsilon(n, alpha)
    xs = np.sort(row)[None, :]
    mean = float(row.mean())
    # Widening to contain the sample mean only guards against rounding (exact maths has it).
    lower = min(float(anderson_lower_sorted(xs, eps)[0]), mean)
    upper = max(float(anderson_upper_sorted(xs, eps)[0]), mean)
    sd = float(std_upper_sorted(xs, eps)[0])
    return AnytimeRow(
        n=n,
        epsilon=eps,
        mean=mean,
        expectation_lower=lower,
        expectation_upper=upper,
        std_upper=sd,
        ed_upper=upper + ed_lambda * sd,
        survival_upper=survival_upper_sorted(xs, thresholds, eps)[0],
        quantile_upper=quantile_upper_sorted(xs, quantiles, eps)[0],
    )
