"""Two-job difference intervals: reference values from scipy's exact binomial interval and
coverage simulations (each simulated run is one "prompt" of a single call, family none)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import binomtest

from shared.errors import InvalidInput
from shared.stats.difference import compare_rows


def test_p_full_interval_is_built_from_alpha_over_four_bounds() -> None:
    alpha = 0.04
    a = [[1.0] * 30 + [0.0] * 70]
    b = [[1.0] * 5 + [0.0] * 95]
    d = compare_rows(a, b, target="p_full", alpha=alpha, family="none")
    # One-sided at alpha / 4 = two-sided exact interval at 1 - alpha / 2.
    ca = binomtest(30, 100).proportion_ci(confidence_level=1 - alpha / 2, method="exact")
    cb = binomtest(5, 100).proportion_ci(confidence_level=1 - alpha / 2, method="exact")
    assert d.lower[0] == pytest.approx(cb.low - ca.high, abs=1e-12)
    assert d.upper[0] == pytest.approx(cb.high - ca.low, abs=1e-12)
    assert d.estimate[0] == pytest.approx(-0.25)
    assert d.decisions == ["b lower"]
    # The p-value is the level at which the interval's upper end reaches 0.
    p = d.p_lower[0]
    at = compare_rows(a, b, target="p_full", alpha=p * 1.0001, family="none")
    below = compare_rows(a, b, target="p_full", alpha=p * 0.999, family="none")
    assert at.decisions == ["b lower"] and below.decisions == ["no difference shown"]


def test_same_data_shows_no_difference_and_family_widens() -> None:
    rng = np.random.default_rng(0)
    a = rng.random((10, 64)).tolist()
    d = compare_rows(a, a, target="mean", alpha=0.05, family="none")
    assert d.decisions == ["no difference shown"] * 10
    h = compare_rows(a, a, target="mean", alpha=0.05, family="holm")
    assert h.interval_alpha == pytest.approx(0.005)
    assert (h.upper - h.lower > d.upper - d.lower).all()


def test_unknown_target_and_mismatched_rows_name_the_field() -> None:
    with pytest.raises(InvalidInput) as err:
        compare_rows([[0.0]], [[1.0]], target="median", alpha=0.05, family="none")
    assert err.value.param == "target"
    with pytest.raises(InvalidInput) as err:
        compare_rows([[0.0]], [[1.0], [0.0]], target="mean", alpha=0.05, family="none")
    assert err.value.param == "b"


def _draw(kind: str, rng: np.random.Generator, size: tuple[int, int]) -> tuple[np.ndarray, float]:
    if kind == "beta25":
        return rng.beta(2, 5, size), 2 / 7
    if kind == "atoms":  # mass at 0 and 1 plus a uniform part, as unlearned models score
        u = rng.random(size)
        x = np.where(u < 0.6, 0.0, np.where(u < 0.7, 1.0, rng.random(size)))
        return x, 0.1 + 0.3 * 0.5
    if kind.startswith("bern"):
        p = float(kind[4:])
        return (rng.random(size) < p).astype(float), p
    raise AssertionError(kind)


# (target, distribution of a, distribution of b, n): five settings.
SETTINGS = [
    ("mean", "beta25", "beta25", 128),
    ("mean", "atoms", "beta25", 256),
    ("p_full", "bern0.01", "bern0.05", 300),
    ("p_full", "bern0.3", "bern0.3", 100),
    ("leak@k", "bern0.02", "bern0.005", 400),
]


@pytest.mark.parametrize(("target", "dist_a", "dist_b", "n"), SETTINGS)
def test_difference_interval_covers(target: str, dist_a: str, dist_b: str, n: int) -> None:
    alpha, runs, k = 0.1, 1000, 10
    rng = np.random.default_rng(99)
    a, mu_a = _draw(dist_a, rng, (runs, n))
    b, mu_b = _draw(dist_b, rng, (runs, n))
    leak_diff = (1 - (1 - mu_b) ** k) - (1 - (1 - mu_a) ** k)
    truth = leak_diff if target == "leak@k" else mu_b - mu_a
    d = compare_rows(a, b, target=target, alpha=alpha, family="none", k=k)
    misses = np.mean((d.lower > truth) | (d.upper < truth))
    assert misses <= alpha + 3 * math.sqrt(alpha * (1 - alpha) / runs)
    # A wrong claim is a miss, so wrong claims are rarer still.
    wrong = sum(
        1
        for dec in d.decisions
        if (dec == "b lower" and truth >= 0) or (dec == "b higher" and truth <= 0)
    )
    assert wrong / runs <= misses + 1e-12
