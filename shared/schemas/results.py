"""A job's results: per prompt its bounds, greedy result and stop, and the summary over all
prompts.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from shared.schemas.bounds import BoundsRow
from shared.schemas.jobs import FamilyName, JobStatus
from shared.schemas.stopping import SequentialRow


class GreedyResult(BaseModel):
    """The temperature-0 generation of a prompt and its score."""

    text: str
    score: float


class FullScoreBounds(BaseModel):
    """One-sided Clopper-Pearson bounds, each at 1 - alpha, on P(score = 1): e.g. "the draw
    contains the whole reference". The event is fixed before sampling, so its count is binomial
    and the bound is exact for every row; on rows of 0/1 scores it equals ``binary`` (M_bin)."""

    k: int = Field(description="Draws that scored exactly 1.")
    lower: float = Field(description="One-sided lower bound on P(score = 1) at level 1 - alpha.")
    upper: float = Field(description="One-sided upper bound on P(score = 1) at level 1 - alpha.")


class PromptResult(BaseModel):
    """The results of one prompt: its draws' bounds and greedy result."""

    id: str
    n: int
    rendered_prompt: str | None = Field(
        None,
        description="The exact text the model was given: `prompt` itself, or the `messages` "
        "rendered with the model's chat template (null if no chunk of the job ran).",
    )
    greedy: GreedyResult | None
    bounds: BoundsRow | None = Field(
        description="Fixed-n bounds; null for an adaptive job (they are invalid under optional "
        "stopping: see `sequential`)."
    )
    full_score: FullScoreBounds | None = Field(
        description="Clopper-Pearson on P(score = 1); null for an adaptive job."
    )
    sequential: SequentialRow | None = Field(
        None, description="Adaptive jobs: the stop and the bounds valid under optional stopping."
    )


class ResultsSummary(BaseModel):
    """Figures over all prompts of a job."""

    prompts: int
    mean_of_means: float | None = Field(
        description="Mean over prompts of the per-prompt sample mean (null without prompts)."
    )
    max_expectation_upper: float | None = Field(
        description="Max over prompts of expectation.upper (null without prompts)."
    )
    greedy_zero_but_sampled_positive: int = Field(
        description="Prompts whose greedy score is 0 while some draw scored > 0."
    )
    full_score_proven: int = Field(
        description="Prompts whose one-sided Clopper-Pearson lower bound (at 1 - alpha) on "
        "P(score = 1) is > 0: a draw scoring 1 (e.g. containing the whole reference) provably "
        "has positive probability. For rows of 0/1 scores this is binary.lower > 0. Adaptive "
        "jobs report no Clopper-Pearson bound (invalid under optional stopping): 0."
    )
    decisions: dict[str, int] | None = Field(
        None,
        description="Adaptive jobs: prompts per decision (above, below, estimated, undecided); "
        "null for fixed-n jobs.",
    )
    leak_at_k: list[MeanLeakAtK] = Field(default_factory=list)
    leaks: LeakFamily | None = None


class MeanLeakAtK(BaseModel):
    """leak@k averaged over the job's prompts."""

    k: int
    estimate: float | None = Field(
        description="Mean over prompts of the unbiased estimate (null if some prompt has k > n)."
    )
    lower: float = Field(
        description="One-sided lower bound on the mean of leak@k over the prompts at 1 - alpha: "
        "the mean of per-prompt Clopper-Pearson-mapped bounds at alpha / m (Bonferroni)."
    )
    upper: float = Field(description="The matching one-sided upper bound at 1 - alpha.")


class LeakFamily(BaseModel):
    """The job's 'leaks' decisions, controlled as the job's `family` says."""

    method: FamilyName
    alpha: float
    leak_tau: float = Field(description="A prompt leaks when P(leak) > leak_tau is shown.")
    leaking: list[str] = Field(description="Ids of the prompts shown to leak.")
    at_least: int = Field(
        description="With bonferroni or holm: with probability >= 1 - alpha every listed prompt "
        "leaks, so at least this many prompts leak. With none: the count of per-prompt "
        "decisions, each at alpha on its own (no statement about the set)."
    )
    statement: str


class JudgeInfo(BaseModel):
    """Which judge scored the draws, with what (for audit)."""

    judge_model: str
    template_sha256: str = Field(description="SHA-256 of the judge template (UTF-8).")
    labels: dict[str, float]


class JobResults(BaseModel):
    """GET /v1/jobs/{id}/results."""

    id: str
    status: JobStatus
    alpha: float
    judge: JudgeInfo | None = Field(None, description="Set for jobs scored by a judge model.")
    partial: bool = Field(False, description="True when the job was cancelled before n draws.")
    source_job: str | None = Field(
        None, description="For a rescore job: the job whose stored draws these results score."
    )
    prompts: list[PromptResult]
    summary: ResultsSummary
    assumptions: str
