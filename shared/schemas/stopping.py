"""Adaptive sampling: the stopping rule and the row of a stopped stream."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.schemas.bounds import (
    EdBounds,
    ExpectationBounds,
    QuantileBound,
    StdBounds,
    SurvivalBound,
)
from shared.schemas.strict import _Strict


def _stopping_rules(schema: dict[str, Any]) -> None:
    """The stopping rule's cross-field rules that JSON Schema can say (shared.stats.stopping's
    ``check_rule`` has them all); min_n and round against max_n it cannot."""
    number, absent = {"type": "number"}, {"type": "null"}
    schema["allOf"] = [
        {
            "oneOf": [
                {"required": ["threshold"], "properties": {"threshold": number, "width": absent}},
                {"required": ["width"], "properties": {"width": number, "threshold": absent}},
            ]
        },
        {
            "oneOf": [
                {"required": ["x"], "properties": {"target": {"const": "survival"}, "x": number}},
                {"properties": {"target": {"enum": ["p_full", "mean"]}, "x": absent}},
            ]
        },
        {
            "oneOf": [
                {"properties": {"futility": absent}},
                {
                    "required": ["futility", "threshold"],
                    "properties": {
                        "futility": number,
                        "threshold": number,
                        "target": {"enum": ["p_full", "survival"]},
                    },
                },
            ]
        },
    ]


class StoppingSpec(_Strict):
    """Adaptive sampling: draw each prompt in rounds and stop once its answer is certain.

    After each round the anytime-valid confidence sequence of ``target`` is updated; the prompt
    stops when it lies wholly above or below ``threshold``, or is at most ``width`` wide, or at
    ``max_n`` draws, or (opt-in, ``futility``) once a decision by ``max_n`` has become
    improbable. Exactly one of ``threshold`` and ``width`` is required. Cross-field rules
    (x with survival, min_n <= max_n, futility with a threshold on p_full or survival, ...) are
    checked at submission, naming the field."""

    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra=_stopping_rules)

    target: Literal["p_full", "mean", "survival"] = Field(
        description="p_full = P(score = 1), mean = E[score], survival = P(score > x)."
    )
    x: float | None = Field(
        None, ge=0.0, lt=1.0, description="The x of target survival, in [0, 1); only with it."
    )
    threshold: float | None = Field(
        None,
        gt=0.0,
        lt=1.0,
        description="Stop once the sequence is wholly above or below it; in (0, 1).",
    )
    width: float | None = Field(
        None, gt=0.0, le=1.0, description="Stop once upper - lower <= width; in (0, 1]."
    )
    min_n: int = Field(1, ge=1, description="No stop before this many draws; 1..max_n.")
    max_n: int = Field(
        ge=1,
        description="Most draws per prompt (at most the server's max_n); takes the place of "
        "sampling.n.",
    )
    round: int = Field(
        64, ge=1, description="Draws per round, 1..max_n (the first round is max(min_n, round))."
    )
    futility: float | None = Field(
        None,
        gt=0.0,
        le=0.5,
        description="Opt-in futility stop, in (0, 0.5]; null (default) = off. An open prompt "
        "stops, decision undecided with reason futile, once its chance of a decision by max_n "
        "is below this for every rate its sequence still allows (an exact computation over the "
        "remaining draws, docs/metrics.md). Only with a threshold, for targets p_full and "
        "survival. It never decides a prompt, so decisions keep their 1 - alpha guarantee; it "
        "may leave undecided a prompt that running on to max_n would have decided.",
    )


class AnytimeBounds(BaseModel):
    """Bounds from the time-uniform DKW band of Howard & Ramdas (2022): valid at a stopping
    time chosen by looking at the data. One two-sided band at alpha, so all hold jointly."""

    epsilon: float = Field(description="Band half-width at n_used.")
    expectation: ExpectationBounds
    std: StdBounds
    ed: EdBounds
    survival: list[SurvivalBound]
    quantiles: list[QuantileBound]


class SequentialRow(BaseModel):
    """One adaptively stopped stream: its stop, its confidence sequence at the stop (the running
    intersection over every round), and the bounds that stay valid under optional stopping."""

    target: Literal["p_full", "mean", "survival"]
    x: float | None = Field(None, description="The x of target survival.")
    n_used: int = Field(description="Draws used (the stopping time).")
    decision: Literal["above", "below", "estimated", "undecided"] = Field(
        description="above/below: the sequence is wholly above/below the threshold; estimated: "
        "it is at most `width` wide; undecided: it stopped for another reason."
    )
    reason: Literal[
        "threshold", "width", "max_n", "max_draws", "end_of_row", "cancelled", "futile"
    ] = Field(
        description="Why the stream stopped (futile: the opt-in futility stop, decision undecided)."
    )
    lower: float = Field(description="Lower end of the two-sided confidence sequence (1 - alpha).")
    upper: float = Field(description="Upper end of the two-sided confidence sequence (1 - alpha).")
    mean: float = Field(description="Sample mean of the n_used scores.")
    anytime: AnytimeBounds
    omitted: list[str] = Field(
        description="Fixed-n bounds left out: they are invalid when n was chosen by looking at "
        "the data (optional stopping)."
    )


class SequentialResponse(BaseModel):
    """`probeval bounds --sequential`: one row per input stream."""

    alpha: float
    stopping: StoppingSpec
    rows: list[SequentialRow]
    assumptions: str
