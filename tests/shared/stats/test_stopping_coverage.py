"""Coverage under optional stopping: the stopping rule applied, the reported interval still
covers the true value in >= 1 - alpha of the runs, and decisions are wrong in <= alpha of them.

Five distributions of a score in [0, 1], each with its true P(score = 1), E[score] and
P(score > x) computed exactly by hand (below). Monte Carlo slack: a rate passes when its count
is <= alpha R + 3 sqrt(R alpha (1 - alpha)) + 1 (three binomial standard deviations). The same
check fails a rule that is not valid under stopping (the fixed-n Clopper-Pearson interval
looked at after every round), so it can fail.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
from scipy.stats import beta as beta_dist

from shared.stats import clopper_pearson
from shared.stats.anytime import anytime_row
from shared.stats.stopping import StoppingRule, run_stream

ALPHA = 0.1
RUNS = 200
MAX_N = 256
Sampler = Callable[[np.random.Generator, int], np.ndarray]


def allowed(runs: int, alpha: float = ALPHA) -> float:
    return alpha * runs + 3.0 * math.sqrt(runs * alpha * (1 - alpha)) + 1.0


def bernoulli(p: float) -> Sampler:
    return lambda rng, n: (rng.random(n) < p).astype(np.float64)


def beta25(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.beta(2.0, 5.0, size=n)


def zero_inflated(rng: np.random.Generator, n: int) -> np.ndarray:
    # 70% exact zeros, else Beta(2, 2): mean 0.3 * 0.5 = 0.15, P(score = 1) = 0.
    return np.where(rng.random(n) < 0.7, 0.0, rng.beta(2.0, 2.0, size=n))


def point_masses(rng: np.random.Generator, n: int) -> np.ndarray:
    # P(0) = 0.5, P(0.5) = 0.3, P(1) = 0.2: mean 0.35, P(score = 1) = P(score > 0.5) = 0.2.
    return rng.choice(np.array([0.0, 0.5, 1.0]), size=n, p=[0.5, 0.3, 0.2])


# (name, sampler, target, x, true value, rule (threshold or width), most runs stop early).
# Thresholds AT the true value are the hardest case: every decision is then wrong.
CASES = [
    ("bernoulli_0.01", bernoulli(0.01), "p_full", None, 0.01, {"threshold": 0.1}, True),
    ("bernoulli_0.01_at", bernoulli(0.01), "p_full", None, 0.01, {"threshold": 0.01}, False),
    ("bernoulli_0.5_at", bernoulli(0.5), "p_full", None, 0.5, {"threshold": 0.5}, False),
    ("bernoulli_0.5_mean", bernoulli(0.5), "mean", None, 0.5, {"width": 0.3}, True),
    ("beta25_mean", beta25, "mean", None, 2.0 / 7.0, {"threshold": 0.45}, True),
    ("beta25_survival", beta25, "survival", 0.5, float(beta_dist.sf(0.5, 2, 5)), {"width": 0.2}, True),
    ("zero_inflated_mean", zero_inflated, "mean", None, 0.15, {"threshold": 0.15}, False),
    ("zero_inflated_p_full", zero_inflated, "p_full", None, 0.0, {"threshold": 0.05}, True),
    ("point_masses_mean", point_masses, "mean", None, 0.35, {"width": 0.3}, True),
    ("point_masses_survival", point_masses, "survival", 0.5, 0.2, {"threshold": 0.2}, False),
]  # fmt: skip


def mean_of(sampler: Sampler) -> float:
    return float(sampler(np.random.default_rng(99), 2_000_000).mean())


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_interval_and_decision_under_optional_stopping(case: tuple) -> None:  # type: ignore[type-arg]
    name, sampler, target, x, truth, bound, early = case
    rule = StoppingRule(
        target=target,
        threshold=bound.get("threshold"),
        width=bound.get("width"),
        min_n=32,
        max_n=MAX_N,
        round=32,
        x=x,
    )
    rng = np.random.default_rng(abs(hash(name)) % 2**32)
    misses = wrong = stopped_early = band_misses = 0
    true_mean = {"beta25": 2.0 / 7.0, "zero": 0.15, "point": 0.35}
    mu = next((v for k, v in true_mean.items() if name.startswith(k)), None)
    for _ in range(RUNS):
        row = sampler(rng, MAX_N)
        state = run_stream(row, rule, ALPHA)
        misses += not (state.lower <= truth <= state.upper)
        if rule.threshold is not None:
            wrong += (state.decision == "above" and truth <= rule.threshold) or (
                state.decision == "below" and truth >= rule.threshold
            )
        stopped_early += state.n < MAX_N
        if mu is not None:
            band = anytime_row(
                row[: state.n],
                alpha=ALPHA,
                thresholds=np.array([]),
                quantiles=np.array([]),
                ed_lambda=1.0,
            )
            band_misses += not (band.expectation_lower <= mu <= band.expectation_upper)
    assert misses <= allowed(RUNS), (name, misses)
    assert wrong <= allowed(RUNS), (name, wrong)
    assert band_misses <= allowed(RUNS), (name, band_misses)
    if early:
        assert stopped_early > RUNS // 2, (name, stopped_early)  # the rule does stop early


def test_true_values_of_the_distributions() -> None:
    # The exact means used above, checked against 2,000,000 draws (sd of the estimate < 4e-4).
    assert mean_of(beta25) == pytest.approx(2.0 / 7.0, abs=2e-3)
    assert mean_of(zero_inflated) == pytest.approx(0.15, abs=2e-3)
    assert mean_of(point_masses) == pytest.approx(0.35, abs=2e-3)


def test_the_check_fails_fixed_n_intervals_looked_at_every_round() -> None:
    # Looking at the fixed-n two-sided Clopper-Pearson interval after every 16 draws and
    # stopping once it excludes p: the interval at the stop misses far more than alpha.
    rng = np.random.default_rng(3)
    p, misses = 0.5, 0
    for _ in range(RUNS):
        row = rng.random(MAX_N) < p
        k = np.cumsum(row)[15::16]
        n = np.arange(16, MAX_N + 1, 16)
        cp = clopper_pearson(k.astype(np.int64), n.astype(np.int64), alpha=ALPHA / 2)
        outside = (cp.lower > p) | (cp.upper < p)
        misses += bool(outside.any())
    assert misses > allowed(RUNS)
