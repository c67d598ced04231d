"""The threshold-tuned mixture sequence (``threshold_prior``): certifies a leak-free stream below
tau close to the fixed-n Clopper-Pearson n, and stays valid under optional stopping for rates
below, at, near and above the threshold (interval misses and wrong decisions <= alpha)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import betaln

from shared.stats import binary_mixture_sequence
from shared.stats.sequential import (
    JEFFREYS,
    MixturePrior,
    MixtureState,
    mixture_update,
    threshold_prior,
)
from shared.stats.stopping import StoppingRule, StreamState, run_stream

ALPHA = 0.1


def allowed(runs: int, alpha: float = ALPHA) -> float:
    # Three binomial standard deviations of Monte Carlo slack, as in test_stopping_coverage.
    return alpha * runs + 3.0 * math.sqrt(runs * alpha * (1 - alpha)) + 1.0


def first_below(x: np.ndarray, tau: float, alpha: float, threshold: float | None) -> int:
    cs = binary_mixture_sequence(x, alpha=alpha, threshold=threshold)
    return int(np.argmax(cs.upper < tau)) + 1 if (cs.upper < tau).any() else -1


def test_a_leak_free_stream_is_certified_near_the_fixed_n_clopper_pearson_n() -> None:
    # tau = alpha = 0.01. Fixed n: (1 - tau)^n <= alpha at n = 459 (Clopper-Pearson, one look).
    # Threshold prior: tau leaves C_t once (1 - tau)^t <= alpha m_t with
    # m_t = 0.8 + 0.2 B(1/2, t + b) / B(1/2, b), b = 0.5 (1 - 0.05) / 0.05 = 9.5; by hand
    # (scipy's betaln) that first happens at t = 478. Beta(1/2, 1/2) needs 851 (864 = 27
    # rounds of 32 in the last benchmark).
    tau = alpha = 0.01
    zeros = np.zeros(2000)
    b = 0.5 * (1 - 5 * tau) / (5 * tau)
    t = np.arange(1, 2001)
    m = 0.8 + 0.2 * np.exp(betaln(0.5, t + b) - betaln(0.5, b))
    by_hand = int(np.argmax(t * math.log1p(-tau) <= math.log(alpha) + np.log(m))) + 1
    assert by_hand == 478
    assert first_below(zeros, tau, alpha, threshold=tau) == by_hand
    assert first_below(zeros, tau, alpha, threshold=None) == 851
    assert math.floor(math.log(alpha) / math.log1p(-tau)) + 1 == 459


def test_the_sequence_still_bounds_streams_with_events() -> None:
    # One leak early, then none: the atom at 0 is gone, and the Beta(1/2, 9.5) part (mass 0.2)
    # still certifies below, a little sooner than Beta(1/2, 1/2): 1,176 draws against 1,183
    # (fixed-n Clopper-Pearson: 662 with one leak, valid for one look only).
    x = np.zeros(2000)
    x[3] = 1.0
    assert first_below(x, 0.01, 0.01, threshold=0.01) == 1176
    assert first_below(x, 0.01, 0.01, threshold=None) == 1183
    rng = np.random.default_rng(0)
    hi = (rng.random(1024) < 0.05).astype(float)
    cs = binary_mixture_sequence(hi, alpha=0.01, threshold=0.01)
    assert (cs.lower > 0.01).any()
    # lower <= running estimate region: the interval always holds the running mean.
    mean = np.cumsum(hi) / np.arange(1, 1025)
    assert np.all(cs.lower <= mean + 1e-12) and np.all(mean <= cs.upper + 1e-12)


def test_prior_choice() -> None:
    assert threshold_prior(0.5) == JEFFREYS  # both sides cost alike: no tuning
    small = threshold_prior(0.01)
    assert small.zero == 0.8 and small.one == 0.0 and small.a == 0.5
    assert small.a / (small.a + small.b) == pytest.approx(0.05)  # Beta mean 5 tau
    big = threshold_prior(0.99)
    assert big.one == 0.8 and big.zero == 0.0 and big.b == 0.5
    # Mirror image: a tuned stream on X near tau = 0.99 is the tuned stream on 1 - X at 0.01.
    rng = np.random.default_rng(5)
    x = (rng.random(700) < 0.995).astype(float)
    a = binary_mixture_sequence(x, alpha=0.05, threshold=0.99)
    b = binary_mixture_sequence(1.0 - x, alpha=0.05, threshold=0.01)
    np.testing.assert_allclose(a.lower, 1.0 - b.upper, atol=1e-11)
    np.testing.assert_allclose(a.upper, 1.0 - b.lower, atol=1e-11)


def test_the_prior_is_kept_with_the_stored_state() -> None:
    prior = threshold_prior(0.02)
    state, _, _ = mixture_update(MixtureState(prior=prior), np.zeros(40, dtype=bool), 0.05)
    back = MixtureState.from_json(state.to_json())
    assert back == state and back.prior == prior
    # A state stored before priors existed (no "prior" key) reads back as Beta(1/2, 1/2).
    old = MixtureState.from_json('{"t": 3, "s": 1, "lower": 0.01, "upper": 0.9}')
    assert old.prior == JEFFREYS
    assert MixtureState(t=3, s=1, lower=0.01, upper=0.9).to_json() == (
        '{"t": 3, "s": 1, "lower": 0.01, "upper": 0.9}'
    )
    # and the stream state of a threshold rule carries it through Redis's JSON.
    rule = StoppingRule("p_full", 0.02, None, min_n=16, max_n=64, round=16)
    s = run_stream(np.zeros(64), rule, 0.05)
    assert StreamState.from_json(s.to_json()).mixture.prior == prior  # type: ignore[union-attr]


def test_bad_threshold_is_refused() -> None:
    from shared.errors import InvalidInput

    with pytest.raises(InvalidInput) as info:
        binary_mixture_sequence([0, 1], alpha=0.05, threshold=1.5)
    assert info.value.param == "threshold"


def test_a_mixture_with_atoms_is_a_probability_prior() -> None:
    # The marginal sums to 1 over all 2^t outcome sequences (here t = 6): a probability prior,
    # which is what makes M_t(p) a mean-1 martingale at the true p.
    prior = MixturePrior(zero=0.5, one=0.2, a=0.5, b=3.0)
    t = 6
    total = 0.0
    for s in range(t + 1):
        lm = prior.log_marginal(np.array([float(s)]), np.array([float(t - s)]))[0]
        total += math.comb(t, s) * math.exp(lm)
    assert total == pytest.approx(1.0, abs=1e-12)


# Rates below, at, near and above tau = 0.05 (and 0.95 mirrored), threshold rule with rounds of
# 32 up to 512 draws, alpha = 0.1: the interval at the stop covers p, decisions are wrong at most
# alpha of the time (at p = tau every decision is wrong: the hardest case).
CASES = [(0.0, 0.05), (0.01, 0.05), (0.03, 0.05), (0.05, 0.05), (0.07, 0.05), (0.2, 0.05),
         (0.95, 0.95), (1.0, 0.95)]  # fmt: skip


@pytest.mark.parametrize(("p", "tau"), CASES)
def test_coverage_and_decisions_under_optional_stopping(p: float, tau: float) -> None:
    runs = 200
    rule = StoppingRule("p_full", tau, None, min_n=32, max_n=512, round=32)
    rng = np.random.default_rng(int(1e6 * p + 1e3 * tau))
    misses = wrong = 0
    for _ in range(runs):
        row = (rng.random(512) < p).astype(np.float64)
        state = run_stream(row, rule, ALPHA)
        misses += not (state.lower <= p <= state.upper)
        wrong += (state.decision == "above" and p <= tau) or (
            state.decision == "below" and p >= tau
        )
    assert misses <= allowed(runs), (p, tau, misses)
    assert wrong <= allowed(runs), (p, tau, wrong)
