"""The adaptive-sampling contract: stopping rules from the schema, and the row of a stopped stream.

``probeval bounds --sequential`` (``run_sequential``) and a finished adaptive job
(``shared.results``) both build their rows with ``sequential_row`` from the stream state of
``shared.stats.stopping``, so the numbers are identical for the same scores.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from shared.schemas import BoundsOptions, SequentialResponse, SequentialRow, StoppingSpec
from shared.stats.anytime import anytime_row
from shared.stats.rows import group_rows
from shared.stats.stopping import StoppingRule, StreamState, check_rule, run_stream
from shared.stats.validation import check_alpha, check_levels

FloatArray = NDArray[np.float64]

# Fixed-n fields of a job's row that an adaptive row leaves out, and why.
OMITTED = [
    "bounds.binary (Clopper-Pearson, fixed n)",
    "full_score (Clopper-Pearson, fixed n)",
    "bounds.betting (betting interval, fixed n)",
    "bounds.expectation, std, ed, survival, quantiles (fixed-n DKW band; see anytime)",
]

SEQUENTIAL_ASSUMPTIONS = (
    "Each row is a stream of i.i.d. draws of a score in [0, 1] for one prompt, in sampling "
    "order, read in rounds and stopped by the stopping rule (n chosen by looking at the data). "
    "lower/upper: the two-sided anytime-valid confidence sequence for the target at 1 - alpha "
    "(a mixture sequence for p_full and survival, with a prior fixed by the rule: for a "
    "threshold tau <= 0.1 mass 0.8 at p = 0 plus 0.2 Beta(1/2, b) with mean 5 tau, mirrored for "
    "tau >= 0.9, else Beta(1/2, 1/2); hedged-capital betting on a 1,000-point grid for the "
    "mean), reported as the running intersection over every draw; it holds at "
    "the stopping time whatever the rule, so a threshold decision is wrong with probability "
    "<= alpha; the opt-in futility stop (reason futile) only ever yields undecided, so it "
    "keeps that. anytime: the time-uniform DKW band of Howard & Ramdas (2022) at alpha, jointly "
    "two-sided, also valid under optional stopping. Fixed-n bounds are omitted: they are "
    "invalid under optional stopping. Each holds for that row alone (use alpha/m for m rows)."
)


def rule_from_spec(spec: StoppingSpec) -> StoppingRule:
    """The pure-stats stopping rule of a request's stopping options."""
    return StoppingRule(
        target=spec.target,
        threshold=spec.threshold,
        width=spec.width,
        min_n=spec.min_n,
        max_n=spec.max_n,
        round=spec.round,
        x=spec.x,
        futility=spec.futility,
    )


def check_stopping(spec: StoppingSpec, *, max_n_limit: int, prefix: str = "stopping.") -> None:
    """Every cross-field rule of a stopping spec; errors name ``stopping.<field>``."""
    check_rule(rule_from_spec(spec), prefix=prefix, max_n_limit=max_n_limit)


def sequential_row(
    row: FloatArray, state: StreamState, spec: StoppingSpec, options: BoundsOptions
) -> SequentialRow:
    """The row of one stopped (or interrupted) stream from its ``n_used`` scores and state."""
    if state.n != row.size:
        raise ValueError(f"the stream folded in {state.n} draws but the row has {row.size}")
    thresholds = check_levels(options.thresholds, name="thresholds")
    levels = check_levels(options.quantiles, name="quantiles")
    band = anytime_row(
        row,
        alpha=options.alpha,
        thresholds=thresholds,
        quantiles=levels,
        ed_lambda=options.ed_lambda,
    )
    return SequentialRow.model_validate({
        "target": spec.target,
        "x": spec.x,
        "n_used": state.n,
        "decision": state.decision or "undecided",
        "reason": state.reason or "cancelled",
        "lower": state.lower,
        "upper": state.upper,
        "mean": band.mean,
        "anytime": {
            "epsilon": band.epsilon,
            "expectation": {"lower": band.expectation_lower, "upper": band.expectation_upper},
            "std": {"upper": band.std_upper},
            "ed": {"lambda": options.ed_lambda, "upper": band.ed_upper},
            "survival": [
                {"x": x, "upper": u}
                for x, u in zip(thresholds.tolist(), band.survival_upper.tolist(), strict=True)
            ],
            "quantiles": [
                {"q": q, "upper": u}
                for q, u in zip(levels.tolist(), band.quantile_upper.tolist(), strict=True)
            ],
        },
        "omitted": OMITTED,
    })  # fmt: skip


def run_sequential(
    rows: Sequence[Sequence[float]] | NDArray[np.floating],
    spec: StoppingSpec,
    options: BoundsOptions,
    *,
    max_n_limit: int = 10**9,
) -> SequentialResponse:
    """Read each row as a stream in the given order, stop it by the rule, report it.

    Raises ``InvalidInput`` naming the field (``scores[i]``, ``alpha``, ``stopping.<field>``).
    """
    check_alpha(options.alpha)
    check_stopping(spec, max_n_limit=max_n_limit)
    lengths, groups = group_rows(rows, "scores")
    by_index: dict[int, FloatArray] = {}
    for idx, x in groups:
        for i, r in zip(idx.tolist(), x, strict=True):
            by_index[i] = r
    rule = rule_from_spec(spec)
    out = []
    for i in range(lengths.size):
        row = by_index[i]
        state = run_stream(row, rule, options.alpha)
        out.append(sequential_row(row[: state.n], state, spec, options))
    return SequentialResponse(
        alpha=options.alpha, stopping=spec, rows=out, assumptions=SEQUENTIAL_ASSUMPTIONS
    )


__all__ = [
    "OMITTED",
    "SEQUENTIAL_ASSUMPTIONS",
    "check_stopping",
    "rule_from_spec",
    "run_sequential",
    "sequential_row",
]
