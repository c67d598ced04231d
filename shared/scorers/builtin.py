"""The built-in scorers' definitions. Their functions live in ``workers/scorer/scoring.py``."""

from __future__ import annotations

import regex
from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.scorers.judge import JudgeOptions
from shared.scorers.registry import ScorerDefinition

_SCORING = "workers.scorer.scoring"


class NoOptions(BaseModel):
    """A scorer without options."""

    model_config = ConfigDict(extra="forbid", strict=True)


class RegexOptions(NoOptions):
    """Options of the `regex` scorer."""

    pattern: str = Field(
        max_length=10_000, description="Regular expression (the `regex` module's dialect)."
    )

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, pattern: str) -> str:
        try:
            # The scorer searches with the `regex` module (it has timeouts): same dialect here.
            regex.compile(pattern)
        except regex.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from exc
        return pattern


BUILTIN_SCORERS: list[ScorerDefinition] = [
    ScorerDefinition(
        name="rouge_l_recall",
        options=NoOptions,
        factory=f"{_SCORING}:make_rouge_l_recall",
        description="ROUGE-L recall of the reference in the draw (1: every reference token, in "
        "order).",
        needs_reference=True,
    ),
    ScorerDefinition(
        name="rouge_l_f",
        options=NoOptions,
        factory=f"{_SCORING}:make_rouge_l_f",
        description="ROUGE-L F-measure of draw and reference.",
        needs_reference=True,
    ),
    ScorerDefinition(
        name="exact_match",
        options=NoOptions,
        factory=f"{_SCORING}:make_exact_match",
        description="1 if the SQuAD-normalised draw equals the normalised reference, else 0.",
        needs_reference=True,
    ),
    ScorerDefinition(
        name="contains",
        options=NoOptions,
        factory=f"{_SCORING}:make_contains",
        description="1 if the draw contains the reference (case-insensitive), else 0.",
        needs_reference=True,
    ),
    ScorerDefinition(
        name="regex",
        options=RegexOptions,
        factory=f"{_SCORING}:make_regex",
        description="1 if `pattern` matches somewhere in the draw, else 0.",
    ),
    ScorerDefinition(
        name="judge",
        options=JudgeOptions,
        factory=None,
        judged=True,
        description="A judge model served by live samplers reads each draw and answers with "
        "one of `labels`; the score is the judge's probability-weighted label value.",
    ),
]
