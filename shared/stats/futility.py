"""Futility: how likely a threshold rule on a mixture sequence is to decide by ``max_n``.

A stream still open after t draws with S events has not yet excluded tau from its sequence
(the running intersection keeps every exclusion, so "open" means no draw so far excluded it).
It decides by ``max_n`` exactly when some later draw u <= max_n excludes tau, i.e. when the
mixture test martingale at tau reaches 1/alpha:

    log m_u(S_u, u - S_u) + log alpha >= S_u log tau + (u - S_u) log(1 - tau)

(``shared.stats.sequential``: p is in C_u iff its likelihood is above alpha m_u). For fixed u
the left side minus the right is convex in S_u (the log of a mixture of exponentials in S_u minus
a linear function), so the outcomes that keep tau inside at draw u are one integer range
``[lo_u, hi_u]``: below it the stream decides "below", above it "above". These ranges depend only
on (prior, tau, alpha, max_n), never on the data, and are computed once per rule
(``open_ranges``, cached).

``decision_probability`` is then an exact dynamic programme over (draw, events): the law of
S_u for the draws t+1 .. max_n under a rate p, with the mass that leaves ``[lo_u, hi_u]``
absorbed as "decided". Its cost is O((max_n - t) x width of the open range), independent of
the draws already folded in, and it needs only (t, S) from the stream's O(1) state.

Which rate: every rate the sequence still allows. ``futility_bound`` bounds the chance of a
decision from above for all p in the stream's [lower, upper] at once (two programmes, at the two
ends), so a stream is given up only when no rate its own sequence leaves open is likely to be
decided by ``max_n``. A plug-in rate S / t would stop far earlier, but also gave up 15 of 40
simulated streams with P = 0.035 that running to max_n certified above tau = 0.01
(docs/metrics.md). This is a product choice, not part of the guarantee: a futile stop only
ever yields "undecided", and the confidence sequence is valid at every stopping time, so no
choice of rate can make a decision wrong; it only decides how many prompts are given up early.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache

import numpy as np
from numpy.typing import NDArray

from shared.stats.sequential import MixturePrior

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]


def _gap(prior: MixturePrior, tau: float, alpha: float, u: IntArray, s: IntArray) -> FloatArray:
    """log M_u(tau) - log(1/alpha) for ``s`` events in ``u`` draws: >= 0 iff tau is excluded."""
    su, fu = s.astype(np.float64), (u - s).astype(np.float64)
    loglik = np.where(su > 0, su * math.log(tau), 0.0) + np.where(
        fu > 0, fu * math.log1p(-tau), 0.0
    )
    out: FloatArray = prior.log_marginal(su, fu) + math.log(alpha) - loglik
    return out


@lru_cache(maxsize=32)
def open_ranges(
    prior: MixturePrior, tau: float, alpha: float, max_n: int
) -> tuple[IntArray, IntArray]:
    """Per draw count u = 0 .. max_n, the event counts ``lo[u] .. hi[u]`` that keep tau inside
    the sequence at u (empty when lo > hi). Integer bisections on a convex function, all u at
    once: O(max_n log max_n) evaluations of the prior's marginal, once per rule."""
    u = np.arange(max_n + 1, dtype=np.int64)
    steps = max(1, int(max_n).bit_length() + 1)
    # The minimiser of the convex gap over s in 0..u: the first s whose forward difference >= 0.
    a, b = np.zeros_like(u), u.copy()
    for _ in range(steps):
        mid = (a + b) // 2
        rising = _gap(prior, tau, alpha, u, np.minimum(mid + 1, u)) >= _gap(
            prior, tau, alpha, u, mid
        )
        rising |= mid >= u
        b = np.where(rising & (a < b), mid, b)
        a = np.where(~rising & (a < b), mid + 1, a)
    k = a
    inside = _gap(prior, tau, alpha, u, k) < 0.0
    # hi: the last s in k..u with the gap < 0 (the gap rises on k..u).
    a, b = k.copy(), u.copy()
    for _ in range(steps):
        mid = (a + b + 1) // 2
        ok = _gap(prior, tau, alpha, u, mid) < 0.0
        a = np.where(ok & (a < b), mid, a)
        b = np.where(~ok & (a < b), mid - 1, b)
    hi = a
    # lo: the first s in 0..k with the gap < 0 (the gap falls on 0..k).
    a, b = np.zeros_like(u), k.copy()
    for _ in range(steps):
        mid = (a + b) // 2
        ok = _gap(prior, tau, alpha, u, mid) < 0.0
        b = np.where(ok & (a < b), mid, b)
        a = np.where(~ok & (a < b), mid + 1, a)
    lo = a
    lo = np.where(inside, lo, 1)
    hi = np.where(inside, hi, 0)
    lo.setflags(write=False)
    hi.setflags(write=False)
    return lo, hi


def _row_runs(
    row_lo: IntArray, row_hi: IntArray, open_: NDArray[np.bool_]
) -> Callable[[int], list[tuple[int, int]]]:
    """Per row r, its maximal runs of open cells [a, b) (cell c is open iff
    row_lo[c] <= r <= row_hi[c]). When both ends are non-decreasing in the cell (the usual
    case: a sequence's boundaries widen and drift with the draws), a row's open cells are one
    run, found by two binary searches; otherwise by a scan of the row."""
    if open_.all() and (np.diff(row_lo) >= 0).all() and (np.diff(row_hi) >= 0).all():

        def one_run(r: int) -> list[tuple[int, int]]:
            a = int(np.searchsorted(row_hi, r, side="left"))
            b = int(np.searchsorted(row_lo, r, side="right"))
            return [(a, b)] if a < b else []

        return one_run

    def scan(r: int) -> list[tuple[int, int]]:
        alive = open_ & (row_lo <= r) & (r <= row_hi)
        edges = np.flatnonzero(np.diff(np.concatenate([[0], alive.astype(np.int8), [0]])))
        return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]

    return scan


def decision_probability(
    lo: IntArray, hi: IntArray, t: int, s: int, p: float, *, below: float | None = None
) -> float:
    """P(some draw u in t+1 .. max_n leaves the open range | S_t = s, rate p), exactly.

    ``lo``/``hi`` from ``open_ranges`` (max_n = len - 1). With ``below``, returns as soon as it is
    known on which side of ``below`` the probability lies (the caller only needs that): then the
    value is a lower bound >= ``below`` or an upper bound < ``below``, not the probability.

    Swept one row of the (draw, count) lattice at a time, where a row is a fixed count of the
    events (or of the non-events, whichever has fewer open rows): along a row the open mass obeys
    y[u] = stay * y[u - 1] + in[u], a first-order linear filter (scipy's ``lfilter``, in C), so
    the Python loop runs once per row (about 25 at tau = 0.01, max_n = 1,024), not once per draw.
    """
    max_n = lo.size - 1
    if t >= max_n:
        return 0.0
    if not lo[t] <= s <= hi[t]:
        return 1.0
    from scipy.signal import lfilter  # a second of import; only futility needs it

    u = np.arange(t, max_n + 1)
    lo_u, hi_u = lo[t:].astype(np.int64), hi[t:].astype(np.int64)
    # Rows by events (row r = events - s, step to the next row with prob. p) or by non-events.
    event_rows = int(hi_u.max()) - s + 1
    f0 = t - s
    nonevent_rows = int((u - lo_u).max()) - f0 + 1
    if event_rows <= nonevent_rows:
        rows, step, row_lo, row_hi = event_rows, p, lo_u - s, hi_u - s
    else:
        rows, step, row_lo, row_hi = nonevent_rows, 1.0 - p, u - hi_u - f0, u - lo_u - f0
    stay = 1.0 - step
    size = u.size  # cells 0 .. size - 1 are the draws t .. max_n
    runs = _row_runs(row_lo, row_hi, lo_u <= hi_u)
    # Row r - 1's open mass on cells prev_a .. prev_a + len - 1 (row -1: the unit mass that
    # enters row 0 at cell 0).
    prev, prev_a = np.ones(1), -1
    decided = 0.0
    for r in range(rows + 1):  # row `rows` is closed everywhere: what reaches it has decided
        # What enters row r: step x row r-1's mass one cell earlier (none from the last cell).
        in_a = prev_a + 1
        inflow = (step if r else 1.0) * prev[: size - in_a]
        if inflow.size == 0:
            break
        in_b = in_a + inflow.size
        total_in = float(inflow.sum())
        kept = 0.0
        y_parts: list[tuple[int, FloatArray]] = []
        for a, b in runs(r):
            # The open cells a .. b - 1 filter what enters them; the closed cell b absorbs what
            # leaves the run (none when b is past max_n), as closed cells absorb what enters.
            lo_c, hi_c = max(a, in_a), b
            if lo_c >= hi_c or lo_c >= in_b:
                continue
            x = np.zeros(hi_c - lo_c)
            seg = inflow[lo_c - in_a : min(hi_c, in_b) - in_a]
            x[: seg.size] = seg
            y = lfilter([1.0], [1.0, -stay], x)
            kept += float(seg.sum())
            if hi_c < size:
                decided += stay * float(y[-1])
            y_parts.append((lo_c, y))
        decided += total_in - kept
        if not y_parts:
            break
        first = y_parts[0][0]
        last = y_parts[-1][0] + y_parts[-1][1].size
        prev = np.zeros(last - first)
        for a, y in y_parts:
            prev[a - first : a - first + y.size] = y
        prev_a = first
        # What may still decide is at most what moves on to the next row.
        rest = step * float(prev[: size - 1 - prev_a].sum())
        if below is not None and (decided >= below or decided + rest < below):
            return decided if decided >= below else decided + rest
    return min(1.0, decided)


def futility_bound(
    lo: IntArray, hi: IntArray, t: int, s: int, lower: float, upper: float, *, below: float
) -> float:
    """An upper bound on sup over p in [lower, upper] of P(a decision by max_n | S_t = s, p).

    Couple the draws of every p through the same uniforms: S_u then rises with p for every u, so
    P(some S_u > hi_u) rises with p and P(some S_u < lo_u) falls with it; each is at most the
    probability of a decision at its end of the interval, and a decision needs one of the two.
    Hence sup_p P(decide | p) <= P(decide | upper) + P(decide | lower). Early exits as in
    ``decision_probability`` (a returned value >= ``below`` is a lower bound on that sum).
    """
    at_upper = decision_probability(lo, hi, t, s, upper, below=below)
    if at_upper >= below:
        return at_upper
    return at_upper + decision_probability(lo, hi, t, s, lower, below=below - at_upper)
