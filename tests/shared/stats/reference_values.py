# ruff: noqa: E501
"""Reference values computed with conbo 0.1.1 in a throwaway virtual environment.

Provenance: `python -m venv /tmp/conbo-venv && /tmp/conbo-venv/bin/pip install conbo==0.1.1`
(numpy 2.4, scipy 1.17, statsmodels 0.14.4), then the script below (kept here verbatim so the
numbers can be regenerated). conbo's alpha is two-sided: its one-sided bounds at level 1 - a are
obtained by passing 2 a; its sd bound is called with a itself (two-sided band at a, as ours).

    T = np.linspace(0, 1, 100)
    x = T[idx]; xr = T[99 - idx]
    conbo.expectation_bounds(x, alpha=2 * a)[2]        -> expectation_upper
    conbo.expectation_bounds(xr, alpha=2 * a)[2]       -> reflected_upper  (1 - it = lower on x)
    conbo.survival_bounds(x, [0, .25, .5, .99], alpha=2 * a)[2] -> survival_upper
    conbo.std_bounds(x, alpha=a)[2]                    -> std_upper
    conbo.binomial_bounds(ones_then_zeros(n, k), alpha=2 * a) -> (lower, upper)

Scores on conbo's own grid T are the case where its 100-point Riemann sum for the upper
expectation bound is exact (the empirical CDF is constant between grid points), so our exact
Anderson bound must agree with it to rounding there.
"""

from __future__ import annotations

import numpy as np

GRID = np.linspace(0, 1, 100)
SURVIVAL_THRESHOLDS = (0.0, 0.25, 0.5, 0.99)

ROWS_ON_GRID: dict[str, list[int]] = {
    "mixed_n10": [0, 0, 12, 30, 30, 47, 63, 80, 99, 99],
    "n1": [37],
    "all_equal_n8": [50] * 8,
    "zeros_ones_n12": [0] * 5 + [99] * 7,
    "spread_n25": [3, 7, 11, 14, 20, 22, 29, 33, 35, 41, 44, 48, 52, 55, 58, 61, 66, 70, 71,
                   77, 83, 88, 90, 95, 98],
}  # fmt: skip

CONBO: dict[tuple[float, str], dict[str, object]] = {
    (0.05, "mixed_n10"): dict(expectation_upper=0.8131774764183248, reflected_upper=0.8715397336292039, survival_upper=[1.0, 1.0, 0.787022756020495, 0.5870227560204949], std_upper=1.0187918709512453),
    (0.05, "n1"): dict(expectation_upper=1.0, reflected_upper=1.0, survival_upper=[1.0, 1.0, 1.0, 1.0], std_upper=1.5583078868902334),
    (0.05, "all_equal_n8"): dict(expectation_upper=0.7192174261300808, reflected_upper=0.7134871695204906, survival_upper=[1.0, 1.0, 1.0, 0.4327045956505713], std_upper=0.7294940010524242),
    (0.05, "zeros_ones_n12"): dict(expectation_upper=0.9366351562337389, reflected_upper=0.7699684895670723, survival_upper=[0.9366351562337389, 0.9366351562337389, 0.9366351562337389, 0.9366351562337389], std_upper=1.123265426650402),
    (0.05, "spread_n25"): dict(expectation_upper=0.7258002809572295, reflected_upper=0.7044343686649879, survival_upper=[1.0, 1.0, 0.7647746830680817, 0.2447746830680817], std_upper=0.7232486974527556),
    (0.01, "mixed_n10"): dict(expectation_upper=0.8778770585262401, reflected_upper=0.9177077958311514, survival_upper=[1.0, 1.0, 0.8798525912188082, 0.679852591218808], std_upper=1.1222156100376235),
    (0.01, "n1"): dict(expectation_upper=1.0, reflected_upper=1.0, survival_upper=[1.0, 1.0, 1.0, 1.0], std_upper=1.6822218781957234),
    (0.01, "all_equal_n8"): dict(expectation_upper=0.7705867052731769, reflected_upper=0.76590480129916, survival_upper=[1.0, 1.0, 1.0, 0.5364915065723368], std_upper=0.8395936502415603),
    (0.01, "zeros_ones_n12"): dict(expectation_upper=1.0, reflected_upper=0.8547101474797444, survival_upper=[1.0, 1.0, 1.0, 1.0], std_upper=1.2342088165569909),
    (0.01, "spread_n25"): dict(expectation_upper=0.766364021291757, reflected_upper=0.7463028263776974, survival_upper=[1.0, 1.0, 0.8234854258770292, 0.3034854258770292], std_upper=0.7974107897224312),
}  # fmt: skip

# (n, k, alpha, lower, upper): conbo.binomial_bounds (statsmodels' Clopper-Pearson) at 2 alpha.
CONBO_BINOMIAL: list[tuple[int, int, float, float, float]] = [
    (1, 0, 0.05, 0.0, 0.95),
    (1, 0, 0.01, 0.0, 0.99),
    (1, 1, 0.05, 0.05, 1.0),
    (1, 1, 0.01, 0.01, 1.0),
    (10, 0, 0.05, 0.0, 0.2588655508930523),
    (10, 0, 0.01, 0.0, 0.36904265551980675),
    (10, 3, 0.05, 0.08726443391415033, 0.6066242161054123),
    (10, 3, 0.01, 0.047506998951161256, 0.7028835276794627),
    (10, 10, 0.05, 0.7411344491069477, 1.0),
    (10, 10, 0.01, 0.6309573444801932, 1.0),
    (50, 1, 0.05, 0.0010253398672320636, 0.09139813071969738),
    (50, 1, 0.01, 0.0002009865165733764, 0.12552371645855273),
    (1024, 512, 0.05, 0.4738351405611784, 0.5261648594388215),
    (1024, 512, 0.01, 0.4632212419928674, 0.5367787580071326),
    (1024, 0, 0.05, 0.0, 0.002921244635388028),
    (1024, 0, 0.01, 0.0, 0.004487139084149817),
]


def grid_row(name: str) -> np.ndarray:
    """The row in a fixed shuffled order: the bounds checked against conbo do not depend on the
    order, and ``bound_rows`` refuses evidently sorted rows (the betting interval does)."""
    idx = np.array(ROWS_ON_GRID[name])
    return GRID[idx[np.random.default_rng(0).permutation(idx.size)]]
