"""The futility stop (``stopping.futility``): its lattice, its probability, and that it never
decides.

Reference values: the open ranges are checked against the sequence itself
(``mixture_prefix_bounds``: tau excluded at u draws iff the interval lies off tau); the decision
probability against a plain draw-by-draw dynamic programme written here, and against Monte Carlo
runs of ``run_stream`` from the same state. Monte Carlo slack: three binomial standard
deviations, as in test_stopping_coverage.py.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from shared.errors import InvalidInput
from shared.stats.futility import decision_probability, futility_bound, open_ranges
from shared.stats.sequential import JEFFREYS, MixturePrior, mixture_prefix_bounds, threshold_prior
from shared.stats.stopping import (
    StoppingRule,
    StreamState,
    advance,
    check_rule,
    run_stream,
    start_stream,
)

IntArray = np.ndarray


def allowed(runs: int, alpha: float) -> float:
    return alpha * runs + 3.0 * math.sqrt(runs * alpha * (1 - alpha)) + 1.0


def rule(**kw: object) -> StoppingRule:
    base: dict[str, object] = {
        "target": "p_full",
        "threshold": 0.01,
        "width": None,
        "min_n": 16,
        "max_n": 1024,
        "round": 16,
        "futility": 0.05,
    }
    base.update(kw)
    return StoppingRule(**base)  # type: ignore[arg-type]


def step_by_step(lo: IntArray, hi: IntArray, t: int, s: int, p: float) -> float:
    """The textbook programme: the law of S_u draw by draw, mass off [lo_u, hi_u] absorbed."""
    mass = {s: 1.0}
    decided = 0.0
    for u in range(t + 1, lo.size):
        nxt: dict[int, float] = {}
        for k, m in mass.items():
            nxt[k] = nxt.get(k, 0.0) + m * (1 - p)
            nxt[k + 1] = nxt.get(k + 1, 0.0) + m * p
        mass = {}
        for k, m in nxt.items():
            if lo[u] <= k <= hi[u]:
                mass[k] = m
            else:
                decided += m
    return decided


@pytest.mark.parametrize(
    ("prior", "tau"),
    [(threshold_prior(0.01), 0.01), (JEFFREYS, 0.3), (threshold_prior(0.95), 0.95)],
    ids=["tuned-0.01", "jeffreys-0.3", "tuned-0.95"],
)
def test_open_ranges_are_where_the_sequence_still_holds_tau(
    prior: MixturePrior, tau: float
) -> None:
    lo, hi = open_ranges(prior, tau, 0.01, 600)
    for u in range(1, 601, 7):
        s = np.arange(u + 1, dtype=np.float64)
        lower, upper = mixture_prefix_bounds(s, np.full(s.size, float(u)), 0.01, prior)
        excluded = (lower > tau) | (upper < tau)
        assert np.array_equal(~excluded, (s >= lo[u]) & (s <= hi[u])), u


def test_open_ranges_at_tau_0_01() -> None:
    # Certifying "below" needs no event at all by 1,024 draws, from draw 478 on (the 478 of
    # docs/metrics.md); "above" needs 26 events at 1,024.
    lo, hi = open_ranges(threshold_prior(0.01), 0.01, 0.01, 1024)
    assert (lo[477], lo[478], lo[1024]) == (0, 1, 1)
    assert hi[1024] == 25


@pytest.mark.parametrize(
    ("tau", "prior", "t", "s", "p"),
    [
        (0.01, threshold_prior(0.01), 64, 1, 0.0156),
        (0.01, threshold_prior(0.01), 256, 4, 0.03),
        (0.01, threshold_prior(0.01), 512, 10, 0.0195),
        (0.01, threshold_prior(0.01), 16, 0, 0.0),
        (0.3, JEFFREYS, 40, 12, 0.3),
        (0.3, JEFFREYS, 100, 40, 0.45),
        (0.95, threshold_prior(0.95), 50, 48, 0.9),
    ],
)
def test_decision_probability_is_the_draw_by_draw_programme(
    tau: float, prior: MixturePrior, t: int, s: int, p: float
) -> None:
    lo, hi = open_ranges(prior, tau, 0.01, 400)
    exact = step_by_step(lo, hi, t, s, p)
    assert decision_probability(lo, hi, t, s, p) == pytest.approx(exact, abs=1e-12)
    # With `below`, only the side of `below` is promised.
    for below in (0.01, 0.05, 0.5):
        early = decision_probability(lo, hi, t, s, p, below=below)
        assert (early < below) == (exact < below)
        assert early <= exact + 1e-12 if early >= below else early >= exact - 1e-12


def test_decision_probability_matches_monte_carlo_runs_of_the_sequence() -> None:
    # From S_256 = 4 under p = 0.02, how often does the sequence itself (mixture_prefix_bounds,
    # not the lattice) exclude tau at some draw up to 1,024? 500 continued streams.
    prior, tau, runs = threshold_prior(0.01), 0.01, 500
    rng = np.random.default_rng(3)
    events = 4 + np.cumsum(rng.random((runs, 768)) < 0.02, axis=1).astype(np.float64)
    draws = np.broadcast_to(np.arange(257, 1025, dtype=np.float64), events.shape)
    lower, upper = mixture_prefix_bounds(events.ravel(), draws.ravel(), 0.01, prior)
    decided = int(((lower > tau) | (upper < tau)).reshape(runs, 768).any(axis=1).sum())
    lo, hi = open_ranges(prior, tau, 0.01, 1024)
    p = decision_probability(lo, hi, 256, 4, 0.02)
    assert 0.05 < p < 0.95  # a case where the answer is not a foregone conclusion
    assert abs(decided - runs * p) <= 3 * math.sqrt(runs * p * (1 - p)) + 1, (decided, runs * p)


def test_futility_bound_covers_every_rate_the_sequence_allows() -> None:
    lo, hi = open_ranges(threshold_prior(0.01), 0.01, 0.01, 1024)
    for t, s, lower, upper in [
        (64, 1, 0.0003, 0.09),
        (256, 3, 0.002, 0.04),
        (640, 6, 0.003, 0.025),
    ]:
        bound = futility_bound(lo, hi, t, s, lower, upper, below=1.0)
        for p in np.linspace(lower, upper, 9):
            assert decision_probability(lo, hi, t, s, float(p)) <= bound + 1e-12


@pytest.mark.parametrize("rate", [0.0, 0.05])
def test_a_clearly_decidable_stream_is_not_stopped_as_futile(rate: float) -> None:
    r = rule(futility=0.05)
    plain = rule(futility=None)
    rng = np.random.default_rng(21)
    for _ in range(20):
        row = (rng.random(1024) < rate).astype(np.float64)
        got, without = run_stream(row, r, 0.01), run_stream(row, plain, 0.01)
        assert got.reason != "futile", (rate, got.n)
        assert got == without and got.decision == ("below" if rate == 0.0 else "above")


def test_a_stream_at_the_threshold_is_given_up_early() -> None:
    rng = np.random.default_rng(5)
    stops = [
        run_stream((rng.random(1024) < 0.01).astype(np.float64), rule(), 0.01) for _ in range(20)
    ]
    assert all(s.decision == "undecided" for s in stops)
    futile = [s for s in stops if s.reason == "futile"]
    assert len(futile) >= 15 and max(s.n for s in futile) < 1024


# Rates near tau = 0.1 (alpha = 0.1, so wrong decisions are frequent enough to count), rounds
# of 16 up to 128 draws; at p = tau every decision is wrong. Futility 0.5 is the most aggressive
# allowed. (docs/metrics.md has the same check with 1,000 runs and more rates.)
@pytest.mark.parametrize(("p", "futility"), [(0.06, 0.5), (0.1, 0.5), (0.1, 0.05), (0.15, 0.5)])
def test_decisions_stay_valid_and_futility_never_decides(p: float, futility: float) -> None:
    alpha, tau, runs = 0.1, 0.1, 200
    r = rule(threshold=tau, max_n=128, futility=futility)
    rng = np.random.default_rng(12345)
    wrong = misses = futile = 0
    for _ in range(runs):
        got = run_stream((rng.random(128) < p).astype(np.float64), r, alpha)
        if got.reason == "futile":
            futile += 1
            assert got.decision == "undecided" and got.n < 128
        wrong += (got.decision == "above" and p <= tau) or (got.decision == "below" and p >= tau)
        misses += not got.lower <= p <= got.upper
    assert futile > 0  # the rule was exercised
    assert wrong <= allowed(runs, alpha), wrong
    assert misses <= allowed(runs, alpha), misses


def test_a_futile_stop_is_a_pure_function_of_the_state() -> None:
    r = rule()
    row = (np.random.default_rng(8).random(1024) < 0.01).astype(np.float64)
    a, b = run_stream(row, r, 0.01), run_stream(row, r, 0.01)
    assert a == b and a.reason == "futile"
    # Re-read from its stored JSON form, the state before the stop stops at the same draw.
    state = start_stream(r)
    while True:
        end = min(r.max_n, state.n + r.round) if state.n else r.first_end()
        nxt = advance(StreamState.from_json(state.to_json()), r, row[state.n : end], 0.01)
        if nxt.stopped:
            break
        state = nxt
    assert nxt == a and StreamState.from_json(a.to_json()) == a


@pytest.mark.parametrize(
    ("kw", "fragment"),
    [
        ({"futility": 0.0}, "allowed: a number in (0, 0.5]"),
        ({"futility": 0.51}, "allowed: a number in (0, 0.5]"),
        ({"futility": float("nan")}, "allowed: a number in (0, 0.5]"),
        ({"target": "mean"}, "allowed targets: p_full, survival"),
        ({"threshold": None, "width": 0.1}, "needs a threshold rule"),
    ],
)
def test_bad_futility_names_the_field(kw: dict[str, object], fragment: str) -> None:
    with pytest.raises(InvalidInput) as err:
        check_rule(rule(**kw), prefix="stopping.")
    assert err.value.param == "stopping.futility" and fragment in err.value.message
