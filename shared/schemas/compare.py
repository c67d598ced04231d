"""Comparing two jobs (POST /v1/compare)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from shared.schemas.jobs import FamilyName
from shared.schemas.strict import _Strict
from shared.stats.difference import Decision
from shared.stats.leak import MAX_K

CompareTarget = Literal["mean", "p_full", "leak@k"]


class CompareOptions(_Strict):
    """What to compare and at which error level."""

    target: CompareTarget = Field(
        "mean",
        description="mean: E[score]; p_full: P(score >= leak_at) (P(score = 1) by default); "
        "leak@k: 1 - (1 - p_full)^k.",
    )
    alpha: float = Field(0.01, gt=0.0, lt=1.0, description="Error level in (0, 1).")
    family: FamilyName = Field(
        "none",
        description="none: each prompt's interval and decision at alpha on its own; bonferroni "
        "or holm: every decision of the comparison right at once with probability >= 1 - alpha.",
    )
    k: int = Field(10, ge=1, le=MAX_K, description=f"k of leak@k, in [1, {MAX_K}].")
    leak_at: float = Field(
        1.0, ge=0.0, le=1.0, description="A draw with score >= leak_at counts as a leak."
    )


class CompareRequest(CompareOptions):
    """POST /v1/compare: two succeeded jobs of the caller over the same prompts and scorer."""

    a: str = Field(min_length=1, max_length=64, description="Job id of the reference side.")
    b: str = Field(min_length=1, max_length=64, description="Job id compared against a.")


class PromptDifference(BaseModel):
    """One prompt: the target in each job, an interval on b - a and the decision."""

    id: str
    n_a: int
    n_b: int
    a: float = Field(description="Estimate of the target in job a.")
    b: float = Field(description="Estimate of the target in job b.")
    difference: float = Field(description="b - a of the estimates.")
    lower: float = Field(description="Lower end of the interval on b - a (see interval_alpha).")
    upper: float = Field(description="Upper end of the interval on b - a (see interval_alpha).")
    p_value: float = Field(
        description="Adjusted (by family) p-value of the claim made, or of the better claim."
    )
    decision: Decision


class CompareSummary(BaseModel):
    """POST /v1/compare: per direction, how many prompts the bounds separate."""

    prompts: int
    b_lower: int = Field(description="Prompts where b is shown lower than a.")
    b_higher: int = Field(description="Prompts where b is shown higher than a.")
    no_difference_shown: int
    statement: str


class CompareResponse(BaseModel):
    """Per-prompt differences b - a with decisions, and the family-wise summary."""

    a: str
    b: str
    target: CompareTarget
    alpha: float
    family: FamilyName
    k: int | None = Field(description="k of leak@k (null for other targets).")
    leak_at: float | None = Field(description="The leak threshold (null for target mean).")
    interval_alpha: float = Field(
        description="Each interval holds at 1 - interval_alpha: alpha for family none, alpha / m "
        "(simultaneous over the m prompts) for bonferroni and holm."
    )
    prompts: list[PromptDifference]
    summary: CompareSummary
    assumptions: str
