"""Stopping rules and incremental stream states: round schedule, exact round trips through
JSON (the state kept in Redis), state size independent of the draws folded in, and the rules."""

from __future__ import annotations

import numpy as np
import pytest

from shared.errors import InvalidInput
from shared.stats import betting_sequence, binary_mixture_sequence
from shared.stats.sequential import uniform_dkw_epsilon
from shared.stats.stopping import (
    StoppingRule,
    StreamState,
    advance,
    check_rule,
    round_end,
    run_stream,
    start_stream,
)


def rule(**kw: object) -> StoppingRule:
    base: dict[str, object] = dict(
        target="mean", threshold=None, width=0.0001, min_n=1, max_n=8192, round=64
    )
    base.update(kw)
    return StoppingRule(**base)  # type: ignore[arg-type]


def test_round_schedule_depends_only_on_the_rule() -> None:
    r = rule(min_n=100, round=64, max_n=300)
    ends, n = [], 0
    while n < r.max_n:
        n = round_end(r, n)
        ends.append(n)
    assert ends == [100, 164, 228, 292, 300]
    assert rule(min_n=1, round=64, max_n=50).first_end() == 50


@pytest.mark.parametrize("target", ["mean", "p_full", "survival"])
def test_round_by_round_through_json_equals_one_pass(target: str) -> None:
    x = np.random.default_rng(2).beta(0.5, 0.5, size=512)
    x[::7] = 1.0
    r = rule(target=target, x=0.5 if target == "survival" else None, round=32, max_n=512)
    state = start_stream(r)
    sizes = []
    while not state.stopped:
        end = round_end(r, state.n)
        state = advance(state, r, x[state.n : end], alpha=0.05)
        text = state.to_json()
        sizes.append(len(text))
        state = StreamState.from_json(text)  # what the scorer stores and reads back
    assert state.n == 512 and state.reason == "max_n"
    assert state.to_json() == run_stream(x, r, 0.05).to_json()  # bit for bit
    # O(1) / O(grid) state: its size does not grow with the draws folded in.
    assert max(sizes) - min(sizes) <= 16
    # The running intersection equals the whole-row sequence at the end.
    if target == "mean":
        cs = betting_sequence(x, alpha=0.05)
    else:
        events = x >= 1.0 if target == "p_full" else x > 0.5
        cs = binary_mixture_sequence(events.astype(float), alpha=0.05)
    assert state.lower == pytest.approx(cs.lower[-1], abs=1e-12)
    assert state.upper == pytest.approx(cs.upper[-1], abs=1e-12)


def test_betting_sequence_memory_is_o_grid() -> None:
    # 16,384 draws x grid 1,000 was a 131 MB float64 matrix per capital process before; now
    # the row is folded in blocks of 1,024 draws, so peak memory stays near 2 x 8 MB.
    import tracemalloc

    x = np.random.default_rng(0).random(16_384)
    tracemalloc.start()
    betting_sequence(x, alpha=0.05)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 60e6, peak


def test_uniform_dkw_width() -> None:
    # Reference: 0.85 sqrt((ln ln(e t) + 0.8 ln(1612 / alpha)) / t) by hand at t = 1000,
    # alpha = 0.05: ln ln(1000 e) = 2.06789, 0.8 ln(32240) = 8.30475 -> 0.0865690.
    assert uniform_dkw_epsilon(1000, 0.05) == pytest.approx(0.0865690, abs=2e-7)
    assert uniform_dkw_epsilon(1024, 0.01) / np.sqrt(np.log(2 / 0.01) / 2048) == pytest.approx(
        1.78, abs=0.01
    )


@pytest.mark.parametrize(
    ("kw", "param"),
    [
        ({"target": "median"}, "target"),
        ({"target": "survival"}, "x"),
        ({"target": "survival", "x": 1.0}, "x"),
        ({"x": 0.3}, "x"),
        ({"width": None}, "threshold"),
        ({"threshold": 0.5}, "threshold"),
        ({"width": None, "threshold": 0.0}, "threshold"),
        ({"width": 0.0}, "width"),
        ({"max_n": 0}, "max_n"),
        ({"min_n": 9000}, "min_n"),
        ({"round": 0}, "round"),
        ({"round": True}, "round"),
    ],
)
def test_bad_rules_name_the_field(kw: dict[str, object], param: str) -> None:
    with pytest.raises(InvalidInput) as info:
        check_rule(rule(**kw), prefix="stopping.")
    assert info.value.param == f"stopping.{param}"
    assert info.value.message.startswith(f"stopping.{param}: ")


def test_a_stopped_stream_takes_no_more_rounds() -> None:
    r = rule(target="p_full", width=None, threshold=0.5, round=8, max_n=64)
    state = run_stream(np.ones(64), r, 0.05)
    assert state.decision == "above" and state.n == 8
    with pytest.raises(ValueError):
        advance(state, r, np.ones(8), 0.05)
