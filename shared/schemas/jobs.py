"""Jobs: the HTTP request, its statuses and the views returned to callers."""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.schemas.bounds import BoundsOptions, UnitLevel
from shared.schemas.callbacks import CallbackState, CallbackUrl
from shared.schemas.errors import ErrorInfo
from shared.schemas.scorer import ScorerSpec, default_scorer
from shared.schemas.stopping import StoppingSpec
from shared.schemas.strict import _Strict
from shared.scorers import SCORERS
from shared.scorers.judge import TEMPLATE_USES_REFERENCE
from shared.stats.family import Family

FamilyName = Family  # defined once, with the procedures, in shared.stats.family


class ChatMessage(_Strict):
    """One turn of a chat, in the OpenAI chat format."""

    role: Literal["system", "user", "assistant"] = Field(description="Who speaks.")
    content: str = Field(max_length=100_000, description="What is said.")


class PromptSpec(_Strict):
    """One prompt of a job: exactly one of ``prompt`` (raw text) or ``messages`` (a chat, rendered
    by the sampler with the model's own chat template, generation prompt added)."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        # Exactly one of the two is given and not null (a null one counts as absent).
        json_schema_extra={
            "oneOf": [
                {"required": ["prompt"], "properties": {"prompt": {"type": "string"}}},
                {"required": ["messages"], "properties": {"messages": {"type": "array"}}},
            ]
        },
    )

    id: str = Field(min_length=1, max_length=256, description="Caller's id, unique in the job.")
    prompt: str | None = Field(
        None, min_length=1, max_length=100_000, description="The raw prompt text."
    )
    messages: list[ChatMessage] | None = Field(
        None,
        min_length=1,
        max_length=256,
        description="A chat (OpenAI format); needs a model with a chat template.",
    )
    reference: str | None = Field(
        None, max_length=100_000, description="Reference answer the scorer compares draws to."
    )

    @model_validator(mode="after")
    def _prompt_or_messages(self) -> PromptSpec:
        if (self.prompt is None) == (self.messages is None):
            raise ValueError("give exactly one of 'prompt' (raw text) or 'messages' (a chat)")
        return self


class SamplingSpec(_Strict):
    """Decoding configuration D of the draws."""

    n: int = Field(1024, ge=1, description="Draws per prompt.")
    # vLLM accepts temperatures in [0, 2]; 0 is greedy decoding.
    temperature: float = Field(1.0, ge=0.0, le=2.0, description="Sampling temperature in [0, 2].")
    top_p: float = Field(1.0, gt=0.0, le=1.0, description="Nucleus sampling mass.")
    top_k: int = Field(0, ge=0, le=1_000_000, description="Top-k cut-off; 0 disables it.")
    max_tokens: int = Field(128, ge=1, description="Most generated tokens per draw.")
    seed: int | None = Field(
        None, ge=0, le=2**63 - 1, description="Seed for reproducible draws; null for fresh ones."
    )


def _job_rules(schema: dict[str, Any]) -> None:
    """The cross-field rules of a job, in the OpenAPI document (``JobCreate``'s schema)."""
    reference_free = sorted(
        d.name for d in SCORERS.values() if not d.needs_reference and not d.judged
    )
    every_prompt_has_reference = {
        "properties": {
            "prompts": {
                "items": {
                    "required": ["reference"],
                    "properties": {"reference": {"type": "string"}},
                }
            }
        }
    }
    scorer_needs_none = {
        "required": ["scorer"],
        "properties": {"scorer": {"properties": {"name": {"enum": reference_free}}}},
    }
    judge_without_reference = {
        "required": ["scorer"],
        "properties": {
            "scorer": {
                "properties": {
                    "name": {"const": "judge"},
                    "template": {"not": {"pattern": TEMPLATE_USES_REFERENCE}},
                }
            }
        },
    }
    schema["allOf"] = [
        # A scorer that compares with a reference (the default, ROUGE-L recall, does) needs one
        # in every prompt (shared.scorers.needs_reference).
        {"anyOf": [every_prompt_has_reference, scorer_needs_none, judge_without_reference]},
        # max_draws only with a stopping rule (shared.adaptive.check_adaptive).
        {
            "anyOf": [
                {"properties": {"max_draws": {"type": "null"}}},
                {"required": ["stopping"], "properties": {"stopping": {"type": "object"}}},
            ]
        },
    ]


class JobCreate(BoundsOptions):
    """POST /v1/jobs: an evaluation job."""

    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra=_job_rules)

    model: str = Field(min_length=1, max_length=256, description="A model served by live samplers.")
    prompts: list[PromptSpec] = Field(min_length=1, description="Prompts to sample.")
    sampling: SamplingSpec = Field(default_factory=SamplingSpec)
    scorer: ScorerSpec = Field(default_factory=default_scorer)
    greedy: bool = Field(True, description="Also record one temperature-0 generation per prompt.")
    family: FamilyName = Field(
        "none",
        description="How the per-prompt 'leaks' decisions are controlled over all prompts of the "
        "job: none (each prompt at alpha on its own), bonferroni or holm (family-wise error "
        "<= alpha over all prompts at once).",
    )
    leak_tau: float = Field(
        0.0,
        ge=0.0,
        lt=1.0,
        description="A prompt is shown to leak when P(leak) > leak_tau is shown (exact binomial "
        "test, dual to Clopper-Pearson); 0 means: its Clopper-Pearson lower bound is > 0.",
    )
    callback_url: CallbackUrl | None = Field(
        None,
        description="http(s) URL that receives a signed POST of the job view once the job "
        "ends (see README: webhooks). Refused when its host resolves to a loopback, private, "
        "link-local or metadata address outside PROBEVAL_CALLBACK_ALLOWED_NETWORKS.",
    )

    stopping: StoppingSpec | None = Field(
        None,
        description="Adaptive sampling: draw in rounds and stop each prompt once its answer is "
        "certain. stopping.max_n takes the place of sampling.n.",
    )
    max_draws: int | None = Field(
        None,
        ge=1,
        description="Adaptive jobs only: most draws for the whole job; draws that stopped "
        "prompts did not use go to open ones (each round is granted while the total allows).",
    )

    @model_validator(mode="after")
    def _max_n_is_n(self) -> JobCreate:
        # With a stopping rule, sampling.n follows stopping.max_n, so that every count of
        # draws planned (limits, progress, sample pages) reads one number. A different n that
        # the caller set is an error, reported by the submission checks as stopping.max_n.
        if self.stopping is not None and "n" not in self.sampling.model_fields_set:
            self.sampling = self.sampling.model_copy(update={"n": self.stopping.max_n})
            self.sampling.model_fields_set.add("n")
        return self


class RescoreRequest(_Strict):
    """POST /v1/jobs/{id}/rescore: score a succeeded job's stored draws again, another way.
    Bound options left out are the source job's."""

    scorer: ScorerSpec = Field(description="The new scoring function.")
    alpha: float | None = Field(
        None, gt=0.0, le=0.5, description="Error level in (0, 0.5] (default: source's)."
    )
    thresholds: list[UnitLevel] | None = Field(
        None, max_length=64, description="Thresholds x in [0, 1] for P(X > x) (default: source's)."
    )
    quantiles: list[UnitLevel] | None = Field(
        None, max_length=64, description="Quantile levels q in [0, 1] (default: source's)."
    )
    ed_lambda: float | None = Field(
        None, ge=0.0, le=1e6, description="lambda in mean + lambda * sd (default: source's)."
    )
    callback_url: CallbackUrl | None = Field(None, description="As on POST /v1/jobs.")


class JobStatus(StrEnum):
    """Where a job is in its life: queued -> running -> succeeded | failed | cancelled."""

    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATUSES


# The two status sets, spelled once. A StrEnum member equals its string, so a status read as
# plain JSON (``view["status"] in TERMINAL_STATUSES``) is checked against the same sets.
ACTIVE_STATUSES: frozenset[JobStatus] = frozenset({JobStatus.queued, JobStatus.running})
TERMINAL_STATUSES: frozenset[JobStatus] = frozenset(JobStatus) - ACTIVE_STATUSES


class Progress(BaseModel):
    """How many of a job's draws are generated and scored."""

    samples_done: int = Field(description="Draws generated and scored so far.")
    samples_total: int = Field(
        description="Draws the job asks for (prompts x n); for an adaptive job, the draws "
        "planned so far (rounds scheduled), which grows as rounds are added."
    )


class AdaptiveProgress(BaseModel):
    """Where an adaptive job's prompts stand."""

    prompts_open: int = Field(description="Prompts still drawing rounds.")
    prompts_stopped: int = Field(description="Prompts their stopping rule (or max_draws) stopped.")


# A job id is 32 lower-case hex digits (a uuid4); the ``after`` cursor of GET /v1/jobs is one.
JOB_ID_PATTERN = r"^[0-9a-f]{32}$"


def new_job_id() -> str:
    """A fresh job id (random, so ids reveal nothing about other jobs), as JOB_ID_PATTERN says."""
    return uuid.uuid4().hex


class JobAccepted(BaseModel):
    """POST /v1/jobs: the new job's id and status."""

    id: str = Field(description="The job id: 32 lower-case hex digits.")
    status: JobStatus


class JobView(BaseModel):
    """GET /v1/jobs/{id}."""

    id: str
    model: str
    status: JobStatus
    progress: Progress
    adaptive: AdaptiveProgress | None = Field(
        None, description="Adaptive jobs only: prompts open and stopped."
    )
    created_at: float = Field(description="Unix time (s).")
    updated_at: float = Field(description="Unix time (s).")
    error: ErrorInfo | None = None
    source_job: str | None = Field(
        None, description="For a rescore job: the job whose stored draws it scores."
    )
    callback: CallbackState | None = Field(
        None, description="Delivery of the webhook to callback_url (null without one)."
    )


class JobEvent(BaseModel):
    """The data of a `progress` event of GET /v1/jobs/{id}/events (the final `end` event
    carries the whole JobView)."""

    id: str
    status: JobStatus
    progress: Progress


class JobListItem(JobView):
    """One job in GET /v1/jobs: its view plus the number of prompts."""

    prompts: int = Field(description="Number of prompts in the job.")


class JobList(BaseModel):
    """GET /v1/jobs: the caller's jobs, newest first."""

    jobs: list[JobListItem]
    next_after: str | None = Field(
        description="Pass as `after` for the next page (a job id); null on the last page.",
    )
