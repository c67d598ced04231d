"""Stopping rules for adaptive sampling: when a prompt's confidence sequence has its answer.

A stream of scores is read in rounds: the first round ends at ``max(min_n, round)`` draws (capped
at ``max_n``), each later one ``round`` draws on, the last at ``max_n``. After each round the
target's confidence sequence is updated (``shared.stats.sequential``) and the stream stops when

* ``threshold`` is set and the sequence lies wholly above it (decision ``"above"``) or wholly
  below it (``"below"``): reason ``"threshold"``;
* ``width`` is set and ``upper - lower <= width``: decision ``"estimated"``, reason ``"width"``;
* it reached ``max_n``: decision ``"undecided"``, reason ``"max_n"``;
* ``futility`` is set (threshold rules on the mixture targets only) and the probability that
  the sequence excludes the threshold by ``max_n`` has dropped below it
  (``shared.stats.futility``): decision ``"undecided"``, reason ``"futile"``. Opt-in: it gives up
  prompts that a longer run might still decide, never decides one.

Targets: ``p_full`` = P(score = 1) and ``survival`` = P(score > x) by a mixture sequence on the
event's indicator (prior Beta(1/2, 1/2) for a width rule; for a threshold rule the prior of
``threshold_prior(tau)``, fixed by the rule before any draw, which certifies a stream with no
events below tau in 478 draws at tau = alpha = 0.01 instead of 851); ``mean`` = E[score] by
hedged-capital betting. The sequence is
two-sided at 1 - alpha uniformly over t, so its interval at the (data-dependent) stopping time
covers the target with probability >= 1 - alpha, and a threshold decision is wrong with
probability <= alpha. Round boundaries depend only on the rule, never on the data.

The same functions serve the scorer (one round per call, state kept in Redis) and
``probeval bounds --sequential`` (a whole row), so both give identical numbers.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from shared.errors import InvalidInput
from shared.stats.futility import futility_bound, open_ranges
from shared.stats.sequential import (
    JEFFREYS,
    BettingState,
    MixturePrior,
    MixtureState,
    betting_update,
    mixture_update,
    threshold_prior,
)

FloatArray = NDArray[np.float64]

Target = Literal["p_full", "mean", "survival"]
Decision = Literal["above", "below", "estimated", "undecided"]
Reason = Literal["threshold", "width", "max_n", "max_draws", "end_of_row", "cancelled", "futile"]
TARGETS: tuple[str, ...] = ("p_full", "mean", "survival")
# Futility needs the exact (draw, events) lattice of a mixture sequence; the betting sequence of
# the mean has no such cheap one.
FUTILITY_TARGETS: tuple[str, ...] = ("p_full", "survival")


@dataclass(frozen=True)
class StoppingRule:
    """When to stop one stream; ``check_rule`` validates one before use."""

    target: Target
    threshold: float | None
    width: float | None
    min_n: int
    max_n: int
    round: int
    x: float | None = None
    futility: float | None = None

    def first_end(self) -> int:
        """Draws in the first round (no decision is taken before ``min_n`` draws)."""
        return min(self.max_n, max(self.min_n, self.round))

    def next_end(self, n: int) -> int:
        """Where the round after ``n`` draws ends (``n`` itself at ``max_n``)."""
        return min(self.max_n, n + self.round)


def _is_number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def check_rule(rule: StoppingRule, *, prefix: str = "", max_n_limit: int | None = None) -> None:
    """Raise ``InvalidInput`` naming ``prefix + field`` and the allowed values for a bad rule."""

    def fail(field: str, message: str) -> None:
        raise InvalidInput(f"{prefix}{field}: {message}", param=f"{prefix}{field}")

    if rule.target not in TARGETS:
        fail("target", f"{rule.target!r} is not a target; allowed: {', '.join(TARGETS)}")
    if rule.target == "survival":
        if rule.x is None:
            fail("x", "target 'survival' needs x, the score threshold of P(score > x)")
        elif not (_is_number(rule.x) and math.isfinite(rule.x) and 0.0 <= rule.x < 1.0):
            fail("x", f"{rule.x!r} is not allowed; allowed: a number in [0, 1)")
    elif rule.x is not None:
        fail("x", f"x is only for target 'survival', not {rule.target!r}; leave it out")
    if (rule.threshold is None) == (rule.width is None):
        fail("threshold", "give exactly one of threshold and width")
    if rule.threshold is not None and not (
        _is_number(rule.threshold) and math.isfinite(rule.threshold) and 0.0 < rule.threshold < 1.0
    ):
        fail("threshold", f"{rule.threshold!r} is not allowed; allowed: a number in (0, 1)")
    if rule.width is not None and not (
        _is_number(rule.width) and math.isfinite(rule.width) and 0.0 < rule.width <= 1.0
    ):
        fail("width", f"{rule.width!r} is not allowed; allowed: a number in (0, 1]")
    if rule.futility is not None:
        if not (_is_number(rule.futility) and 0.0 < rule.futility <= 0.5):
            fail(
                "futility",
                f"{rule.futility!r} is not allowed; allowed: a number in (0, 0.5] or null",
            )
        if rule.target not in FUTILITY_TARGETS:
            fail(
                "futility",
                f"futility is not available for target {rule.target!r}; allowed targets: "
                f"{', '.join(FUTILITY_TARGETS)} (or leave futility out)",
            )
        if rule.threshold is None:
            fail(
                "futility",
                "futility needs a threshold rule (it is the chance of a decision); with width, "
                "leave futility out",
            )
    limit = max_n_limit if max_n_limit is not None else 10**9
    if not (_is_int(rule.max_n) and 1 <= rule.max_n <= limit):
        fail("max_n", f"{rule.max_n!r} is not allowed; allowed: an integer in 1..{limit}")
    if not (_is_int(rule.min_n) and 1 <= rule.min_n <= rule.max_n):
        fail("min_n", f"{rule.min_n!r} is not allowed; allowed: an integer in 1..max_n")
    if not (_is_int(rule.round) and 1 <= rule.round <= rule.max_n):
        fail("round", f"{rule.round!r} is not allowed; allowed: an integer in 1..max_n")


@dataclass(frozen=True)
class StreamState:
    """One stream's progress: draws folded in, the sequence's state, and its stop (if any)."""

    n: int
    mixture: MixtureState | None
    betting: BettingState | None
    decision: Decision | None = None
    reason: Reason | None = None

    @property
    def lower(self) -> float:
        return self.mixture.lower if self.mixture is not None else _betting(self).lower

    @property
    def upper(self) -> float:
        return self.mixture.upper if self.mixture is not None else _betting(self).upper

    @property
    def stopped(self) -> bool:
        return self.decision is not None

    def to_json(self) -> str:
        inner = self.mixture.to_json() if self.mixture is not None else _betting(self).to_json()
        kind = "mixture" if self.mixture is not None else "betting"
        return json.dumps({
            "n": self.n, "kind": kind, "state": inner,
            "decision": self.decision, "reason": self.reason,
        })  # fmt: skip

    @classmethod
    def from_json(cls, text: str) -> StreamState:
        d = json.loads(text)
        mixture = MixtureState.from_json(d["state"]) if d["kind"] == "mixture" else None
        betting = BettingState.from_json(d["state"]) if d["kind"] == "betting" else None
        return cls(
            n=int(d["n"]),
            mixture=mixture,
            betting=betting,
            decision=d.get("decision"),
            reason=d.get("reason"),
        )


def _betting(state: StreamState) -> BettingState:
    if state.betting is None:
        raise ValueError("a stream state holds either a mixture or a betting state")
    return state.betting


def mixture_prior(rule: StoppingRule) -> MixturePrior:
    """The mixing prior of a p_full/survival stream: tuned to the threshold when there is one."""
    return threshold_prior(rule.threshold) if rule.threshold is not None else JEFFREYS


def start_stream(rule: StoppingRule) -> StreamState:
    """The state of a stream before any draw: the statistic the rule's target needs."""
    if rule.target == "mean":
        return StreamState(n=0, mixture=None, betting=BettingState.start())
    return StreamState(n=0, mixture=MixtureState(prior=mixture_prior(rule)), betting=None)


def _events(rule: StoppingRule, scores: FloatArray) -> NDArray[np.bool_]:
    if rule.target == "p_full":
        return np.asarray(scores >= 1.0)
    return np.asarray(scores > float(rule.x if rule.x is not None else 0.0))


def decide(
    rule: StoppingRule, n: int, lower: float, upper: float
) -> tuple[Decision, Reason] | None:
    """The stop after ``n`` draws with the sequence at [lower, upper], or None to go on."""
    if n >= rule.min_n:
        if rule.threshold is not None:
            if lower > rule.threshold:
                return "above", "threshold"
            if upper < rule.threshold:
                return "below", "threshold"
        elif rule.width is not None and upper - lower <= rule.width:
            return "estimated", "width"
    if n >= rule.max_n:
        return "undecided", "max_n"
    return None


def futile(rule: StoppingRule, state: StreamState, alpha: float) -> bool:
    """Whether an open stream's chance of a decision by ``max_n`` is below ``rule.futility``
    for every rate its sequence still allows.

    A pure function of the stream's state and the rule: ``futility_bound`` at the sequence's
    ends (``shared.stats.futility``), exact over the remaining draws.
    """
    if rule.futility is None or rule.threshold is None or state.mixture is None:
        return False
    if state.n < rule.min_n or state.n >= rule.max_n:
        return False
    m = state.mixture
    lo, hi = open_ranges(m.prior, rule.threshold, alpha, rule.max_n)
    return futility_bound(lo, hi, m.t, m.s, m.lower, m.upper, below=rule.futility) < rule.futility


def advance(
    state: StreamState, rule: StoppingRule, scores: FloatArray, alpha: float
) -> StreamState:
    """Fold one round of scores (in sampling order) into a stream and apply the rule.

    O(len(scores)) for the mixture targets, O(len(scores) x grid) for the mean; never depends on
    the draws already folded in. ``scores`` must be exactly the round that follows ``state.n``.
    """
    if state.stopped:
        raise ValueError("the stream has stopped; no further round may be folded in")
    if state.mixture is not None:
        mixture, _, _ = mixture_update(state.mixture, _events(rule, scores), alpha)
        new = StreamState(n=state.n + scores.size, mixture=mixture, betting=None)
    else:
        betting, _, _ = betting_update(_betting(state), scores, alpha)
        new = StreamState(n=state.n + scores.size, mixture=None, betting=betting)
    stop = decide(rule, new.n, new.lower, new.upper)
    if stop is None and futile(rule, new, alpha):
        stop = ("undecided", "futile")
    if stop is None:
        return new
    return StreamState(
        n=new.n, mixture=new.mixture, betting=new.betting, decision=stop[0], reason=stop[1]
    )


def round_end(rule: StoppingRule, n: int) -> int:
    """End of the round that starts after ``n`` draws."""
    return rule.first_end() if n == 0 else rule.next_end(n)


def run_stream(row: FloatArray, rule: StoppingRule, alpha: float) -> StreamState:
    """Read a whole row round by round, as the service would have drawn it, until it stops.

    A row that ends before the rule stops it gets decision ``"undecided"``, reason
    ``"end_of_row"`` (its last, partial round is folded in).
    """
    state = start_stream(rule)
    while not state.stopped:
        end = round_end(rule, state.n)
        if state.n >= row.size:
            return StreamState(
                n=state.n,
                mixture=state.mixture,
                betting=state.betting,
                decision="undecided",
                reason="end_of_row",
            )
        chunk = row[state.n : min(end, row.size)]
        state = advance(state, rule, chunk, alpha)
        if not state.stopped and end > row.size:
            return StreamState(
                n=state.n,
                mixture=state.mixture,
                betting=state.betting,
                decision="undecided",
                reason="end_of_row",
            )
    return state
