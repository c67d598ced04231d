"""A job's stored draws and scores as read back: sample pages, export records, score lists."""

from __future__ import annotations

from pydantic import BaseModel, Field


class Sample(BaseModel):
    """One stored draw: its index in sampling order, text and score."""

    index: int
    text: str
    score: float | None


class DrawRecord(BaseModel):
    """One line of GET /v1/jobs/{id}/samples.jsonl (and one row of the Parquet draws table)."""

    prompt_id: str
    index: int
    text: str
    score: float | None


class SamplesPage(BaseModel):
    """GET /v1/jobs/{id}/samples: one page of a prompt's draws."""

    samples: list[Sample]
    total: int
    rendered_prompt: str | None = Field(
        None, description="The exact text the model was given (see PromptResult)."
    )


class PromptScores(BaseModel):
    """Every stored score of one prompt, without the texts."""

    prompt_id: str
    scores: list[float] = Field(description="Scores in sampling order (draw index ascending).")
    band_epsilon: float | None = Field(
        description="Half-width of the two-sided band around the empirical CDF at 1 - alpha: "
        "DKW (Massart's constant) for a fixed-n job, the time-uniform band of Howard & Ramdas "
        "for an adaptive one (valid under optional stopping); null without scores."
    )


class JobScores(BaseModel):
    """GET /v1/jobs/{id}/scores: the scores of the prompts asked for, in the order asked."""

    alpha: float = Field(description="The job's alpha, at which each band holds.")
    band_holds_under_optional_stopping: bool = Field(
        description="True for an adaptive job's time-uniform bands."
    )
    prompts: list[PromptScores]
