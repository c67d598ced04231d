"""Seeded coverage simulations: every bound holds in >= 1 - alpha of replications (up to noise).

Each case draws R independent rows of n scores from a distribution whose mean, sd, survival
function and quantiles are known exactly, computes the bounds and counts misses. A bound passes
when its misses are at most ``alpha R + 3 sqrt(R alpha (1 - alpha)) + 1`` (binomial noise).
The same check is run on the reference library's sd construction, which it must reject.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
from scipy.special import betainc

from shared.stats import betting_sequence, binary_mixture_sequence, bound_rows
from tests.shared.stats.conbo_construction import conbo_std_upper

ALPHA = 0.1
REPS = 300
N = 512
THRESHOLDS = (0.0, 0.1, 0.5, 0.9)
LEVELS = (0.1, 0.5, 0.9, 0.99)


@dataclass(frozen=True)
class Dist:
    """A score distribution on [0, 1]: atoms at 0 and 1 plus a Beta(a, b) part (weight rest)."""

    name: str
    w0: float
    w1: float
    a: float = 1.0
    b: float = 1.0

    @property
    def wc(self) -> float:
        return 1.0 - self.w0 - self.w1

    def sample(self, rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
        u = rng.random(shape)
        cont = rng.beta(self.a, self.b, size=shape) if self.wc > 0 else np.zeros(shape)
        return np.where(u < self.w0, 0.0, np.where(u < self.w0 + self.w1, 1.0, cont))

    def cdf(self, x: np.ndarray) -> np.ndarray:
        cont = betainc(self.a, self.b, np.clip(x, 0.0, 1.0)) if self.wc > 0 else 0.0
        return np.where(x >= 1.0, 1.0, self.w0 + self.wc * cont)

    @property
    def mean(self) -> float:
        return self.w1 + self.wc * self.a / (self.a + self.b)

    @property
    def sd(self) -> float:
        ab = self.a + self.b
        m2c = self.a * (self.a + 1) / (ab * (ab + 1))
        return math.sqrt(self.w1 + self.wc * m2c - self.mean**2)

    def quantile(self, q: float) -> float:
        """inf{x : F(x) >= q}, by bisection on the exact CDF (handles the atoms)."""
        if self.cdf(np.array(0.0)) >= q:
            return 0.0
        lo, hi = 0.0, 1.0
        for _ in range(80):
            mid = 0.5 * (lo + hi)
            lo, hi = (lo, mid) if self.cdf(np.array(mid)) >= q else (mid, hi)
        return hi


DISTS = [
    Dist("bernoulli-0.01", w0=0.99, w1=0.01),
    Dist("bernoulli-0.5", w0=0.5, w1=0.5),
    Dist("beta-2-5", w0=0.0, w1=0.0, a=2, b=5),
    Dist("beta-0.5-0.5", w0=0.0, w1=0.0, a=0.5, b=0.5),
    Dist("atom0-0.6-beta-2-2", w0=0.6, w1=0.0, a=2, b=2),
    Dist("atoms-0.3-0.2-beta-1-3", w0=0.3, w1=0.2, a=1, b=3),
]


def max_misses(reps: int, alpha: float) -> float:
    return alpha * reps + 3.0 * math.sqrt(reps * alpha * (1 - alpha)) + 1.0


def assert_covers(hits: np.ndarray, what: str) -> None:
    misses = int((~hits).sum())
    assert misses <= max_misses(hits.size, ALPHA), f"{what}: {misses} misses of {hits.size}"


@pytest.fixture(scope="module")
def tables() -> dict[str, tuple[Dist, object]]:
    out = {}
    for i, d in enumerate(DISTS):
        x = d.sample(np.random.default_rng(1000 + i), (REPS, N))
        out[d.name] = (d, bound_rows(x, alpha=ALPHA, thresholds=THRESHOLDS, quantiles=LEVELS))
    return out


@pytest.mark.parametrize("name", [d.name for d in DISTS])
def test_every_fixed_n_bound_covers(name: str, tables: dict) -> None:
    d, t = tables[name]
    mu, sd = d.mean, d.sd
    assert_covers(t.expectation_lower <= mu, "expectation.lower")
    assert_covers(t.expectation_upper >= mu, "expectation.upper")
    assert_covers(t.std_upper >= sd, "std.upper")
    assert_covers(t.ed_upper >= mu + 1.0 * sd, "ed.upper")
    assert_covers((t.betting_lower <= mu) & (mu <= t.betting_upper), "betting")
    surv = 1.0 - d.cdf(np.array(THRESHOLDS))
    assert_covers((t.survival_upper >= surv).all(axis=1), "survival (joint)")
    qs = np.array([d.quantile(q) for q in LEVELS])
    assert_covers((t.quantile_upper >= qs).all(axis=1), "quantiles (joint)")
    if d.wc == 0.0:
        assert t.binary.all()
        assert_covers(t.binary_upper >= d.w1, "binary.upper")
        assert_covers(t.binary_lower <= d.w1, "binary.lower")


SdBound = Callable[[np.ndarray, float], np.ndarray]


def ours_sd(x: np.ndarray, alpha: float) -> np.ndarray:
    return bound_rows(x, alpha=alpha).std_upper


def sd_coverage_holds(bound: SdBound, d: Dist, seed: int) -> bool:
    x = d.sample(np.random.default_rng(seed), (REPS, N))
    misses = int((bound(x, ALPHA) < d.sd).sum())
    return misses <= max_misses(REPS, ALPHA)


def test_sd_check_passes_ours_and_rejects_the_reference_construction() -> None:
    bern = DISTS[1]  # Bernoulli(1/2): half the mass is an atom at 0, which conbo drops
    assert sd_coverage_holds(ours_sd, bern, seed=7)
    assert not sd_coverage_holds(conbo_std_upper, bern, seed=7)


def test_confidence_sequences_cover_at_every_prefix() -> None:
    reps, n = 100, 256
    rng = np.random.default_rng(42)
    d = DISTS[2]
    hits = []
    for row in d.sample(rng, (reps, n)):
        cs = betting_sequence(row, alpha=ALPHA, grid_size=500)
        hits.append(bool(((cs.lower <= d.mean) & (d.mean <= cs.upper)).all()))
    assert_covers(np.array(hits), "betting sequence (all prefixes)")
    hits = []
    for p in (0.05, 0.5):
        for row in (rng.random((reps, n)) < p).astype(float):
            cs = binary_mixture_sequence(row, alpha=ALPHA)
            hits.append(bool(((cs.lower <= p) & (p <= cs.upper)).all()))
    assert_covers(np.array(hits), "binary mixture sequence (all prefixes)")


def test_the_check_has_power_against_an_invalid_bound() -> None:
    # The sample mean used as an "upper bound" misses about half the time: the check must fail.
    d = DISTS[2]
    x = d.sample(np.random.default_rng(3), (REPS, N))
    misses = int((x.mean(axis=1) < d.mean).sum())
    assert misses > max_misses(REPS, ALPHA)
