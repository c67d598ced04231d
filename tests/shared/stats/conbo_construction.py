"""The reference library's (conbo 0.1.1) expectation and sd constructions, re-implemented here.

Copied formula for formula from ``conbo/confidence_bounds.py`` (``cdf_bounds``,
``expectation_bounds``, ``variance_bounds``) for 2-D inputs, so tests can show that the coverage
check catches its faults without installing conbo (it must not go into .venv).
``test_variance.py`` checks that this copy reproduces values computed by conbo itself.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]


def _cdf_bounds(x: FloatArray, t: FloatArray, alpha: float) -> tuple[FloatArray, ...]:
    n = x.shape[1]
    eps = np.sqrt(np.log(2 / alpha) / (2 * n))
    cdf = np.column_stack([(x <= v).mean(-1) for v in t])
    return cdf, np.maximum(cdf - eps, 0), np.minimum(cdf + eps, 1)


def conbo_expectation(x: FloatArray, alpha: float, stepsize: int = 100) -> tuple[FloatArray, ...]:
    """conbo.expectation_bounds: (lower, upper), each one-sided at alpha / 2 (its convention)."""
    t = np.linspace(0, 1, stepsize)
    _, lo, up = _cdf_bounds(x, t, alpha)
    h = np.diff(t)
    return 1 - (up[..., 1:] * h).sum(-1), 1 - (lo[..., :-1] * h).sum(-1)


def conbo_std_upper(x: FloatArray, alpha: float, stepsize: int = 100) -> FloatArray:
    """conbo.std_bounds(x, alpha)[2]: its sd upper bound from the two-sided band at alpha."""
    exp_lower, exp_upper = conbo_expectation(x, alpha)
    t = np.linspace(0, 1, stepsize)
    taus1 = np.expand_dims(t[:-1], 1).repeat(x.shape[0], axis=1)
    taus2 = np.expand_dims(t[1:], 1).repeat(x.shape[0], axis=1)
    etas = np.stack(
        [(taus1 - exp_lower) ** 2, (taus1 - exp_upper) ** 2,
         (taus2 - exp_lower) ** 2, (taus2 - exp_upper) ** 2]
    )  # fmt: skip
    etas_max = etas.max(axis=0).T
    cdf, cdf_lower, _ = _cdf_bounds(x, t, alpha)
    eps = np.sqrt(np.log(2 / alpha) / (2 * x.shape[1]))
    diff = etas_max[..., :-1] - etas_max[..., 1:]
    var_upper = ((cdf[..., 1:-1] + (2 * (diff > 0) - 1) * eps) * diff).sum(-1)
    # The term below weighs the first bin by the *lower* CDF at 0: the atom at 0 is dropped.
    var_upper = var_upper + etas_max[..., -1] - etas_max[..., 0] * cdf_lower[..., 0]
    return np.sqrt(var_upper)
