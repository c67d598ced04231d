"""One schema for everything that crosses a process boundary: HTTP bodies, queue payloads and
the records stored in Redis. Field descriptions become the OpenAPI documentation.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal
from urllib.parse import urlsplit

import regex
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class _Strict(BaseModel):
    """Unknown fields are an error, not silently dropped: a typo must not change a job. Types are
    strict too: ``"n": "10"`` or ``"n": true`` is a 422, not a silent conversion."""

    model_config = ConfigDict(extra="forbid", strict=True)


# --------------------------------------------------------------------------------------------
# Bounds: the row contract shared by `probeval bounds`, POST /v1/bounds and job results.
# --------------------------------------------------------------------------------------------


class BinaryBounds(_Strict):
    """Clopper-Pearson bounds on P(X = 1) (paper: M_bin); only for rows of exact 0/1 scores."""

    k: int = Field(description="Number of draws that scored exactly 1.")
    upper: float = Field(description="One-sided upper bound on P(X = 1) at level 1 - alpha.")
    lower: float = Field(description="One-sided lower bound on P(X = 1) at level 1 - alpha.")


class ExpectationBounds(_Strict):
    """Anderson's DKW bounds on E[X] from order statistics, exact (paper: M_mu).

    NOT A TWO-SIDED INTERVAL: ``lower`` and ``upper`` are two separate one-sided bounds, each at
    1 - alpha, so [lower, upper] holds only at 1 - 2 alpha. For a two-sided interval at
    1 - alpha use ``betting`` (or request alpha / 2)."""

    lower: float = Field(
        description="One-sided lower bound on E[X] at level 1 - alpha (alone; with upper the "
        "pair holds at 1 - 2 alpha)."
    )
    upper: float = Field(
        description="One-sided upper bound on E[X] at level 1 - alpha (alone; with lower the "
        "pair holds at 1 - 2 alpha)."
    )


class StdBounds(_Strict):
    """Upper bound on sd(X) from the two-sided DKW band at alpha (paper: M_sigma)."""

    upper: float = Field(description="Upper bound on the standard deviation at level 1 - alpha.")


class EdBounds(_Strict):
    """Mean upper bound plus lambda times sd upper bound, joint at 1 - alpha (paper: M_ED)."""

    lambda_: float = Field(alias="lambda", description="The weight lambda of the sd term.")
    upper: float = Field(description="Upper bound on E[X] + lambda * sd(X) at level 1 - alpha.")

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class SurvivalBound(_Strict):
    """One-sided DKW upper bound on P(X > x) (paper: M_gen), joint over all thresholds."""

    x: float = Field(description="The threshold x.")
    upper: float = Field(description="Upper bound on P(X > x) at level 1 - alpha.")


class QuantileBound(_Strict):
    """Upper bound on the q-quantile of X from the one-sided DKW band."""

    q: float = Field(description="The quantile level q.")
    upper: float = Field(description="Upper bound on the q-quantile at level 1 - alpha.")


class BettingBounds(_Strict):
    """Waudby-Smith & Ramdas hedged-capital betting interval for E[X] (fixed n)."""

    lower: float = Field(description="Lower end of the two-sided interval at level 1 - alpha.")
    upper: float = Field(description="Upper end of the two-sided interval at level 1 - alpha.")


class BoundsRow(BaseModel):
    """All bounds for one row of scores (the n draws of one prompt)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    n: int = Field(description="Number of draws in the row.")
    mean: float = Field(description="Sample mean of the scores.")
    binary: BinaryBounds | None = Field(description="Only when every score is exactly 0 or 1.")
    expectation: ExpectationBounds
    std: StdBounds
    ed: EdBounds
    survival: list[SurvivalBound]
    quantiles: list[QuantileBound]
    betting: BettingBounds


# A threshold or quantile level: the same closed unit interval as the scores.
UnitLevel = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]


class BoundsOptions(_Strict):
    """The options every bounds computation takes, and their limits: the one definition (the
    CLI's flags and POST /v1/bounds and /v1/jobs are all derived from this model)."""

    alpha: float = Field(
        0.01, gt=0.0, le=0.5, description="Error level in (0, 0.5]; bounds hold at 1 - alpha."
    )
    thresholds: list[UnitLevel] = Field(
        default_factory=list,
        max_length=64,
        description="Thresholds x in [0, 1] for upper bounds on P(X > x); at most 64.",
    )
    quantiles: list[UnitLevel] = Field(
        default_factory=list,
        max_length=64,
        description="Quantile levels q in [0, 1] for upper bounds on the q-quantile; at most 64.",
    )
    ed_lambda: float = Field(
        1.0, ge=0.0, le=1e6, description="Weight lambda in [0, 1e6] of ed = mean + lambda * sd."
    )

    def options(self) -> BoundsOptions:
        """Just the bound options of this model (a job or a request carries more fields)."""
        return BoundsOptions.model_validate(
            {name: getattr(self, name) for name in BoundsOptions.model_fields}
        )


class BoundsRequest(BoundsOptions):
    """POST /v1/bounds: scores the caller already has."""

    scores: list[list[float]] = Field(
        min_length=1, description="One row per prompt, each a non-empty list of scores in [0, 1]."
    )


class BoundsResponse(BaseModel):
    """Bounds per row, in input order, with the assumptions they rest on."""

    alpha: float
    rows: list[BoundsRow]
    assumptions: str = Field(
        description="What the guarantees assume: i.i.d. draws, scores in [0, 1], alpha, the "
        "sidedness of each bound and whether it holds under optional stopping."
    )


# --------------------------------------------------------------------------------------------
# Adaptive sampling: the stopping rule and the row of a stopped stream.
# --------------------------------------------------------------------------------------------


class StoppingSpec(_Strict):
    """Adaptive sampling: draw each prompt in rounds and stop once its answer is certain.

    After each round the anytime-valid confidence sequence of ``target`` is updated; the prompt
    stops when it lies wholly above or below ``threshold``, or is at most ``width`` wide, or at
    ``max_n`` draws. Exactly one of ``threshold`` and ``width`` is required. Cross-field rules
    (x with survival, min_n <= max_n, ...) are checked at submission, naming the field."""

    target: Literal["p_full", "mean", "survival"] = Field(
        description="p_full = P(score = 1), mean = E[score], survival = P(score > x)."
    )
    x: float | None = Field(None, description="The x of target survival, in [0, 1).")
    threshold: float | None = Field(
        None, description="Stop once the sequence is wholly above or below it; in (0, 1)."
    )
    width: float | None = Field(None, description="Stop once upper - lower <= width; in (0, 1].")
    min_n: int = Field(1, description="No stop before this many draws; 1..max_n.")
    max_n: int = Field(description="Most draws per prompt; takes the place of sampling.n.")
    round: int = Field(64, description="Draws per round (the first round is max(min_n, round)).")


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
    reason: Literal["threshold", "width", "max_n", "max_draws", "end_of_row", "cancelled"] = Field(
        description="Why the stream stopped."
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


# --------------------------------------------------------------------------------------------
# Jobs: the HTTP request, the stored record and the views returned to callers.
# --------------------------------------------------------------------------------------------

ScorerName = Literal["rouge_l_recall", "rouge_l_f", "exact_match", "contains", "regex"]
SCORERS_NEEDING_REFERENCE: frozenset[str] = frozenset(
    {"rouge_l_recall", "rouge_l_f", "exact_match", "contains"}
)


class PromptSpec(_Strict):
    """One prompt of a job."""

    id: str = Field(min_length=1, max_length=256, description="Caller's id, unique in the job.")
    prompt: str = Field(min_length=1, max_length=100_000, description="The prompt text.")
    reference: str | None = Field(
        None, max_length=100_000, description="Reference answer the scorer compares draws to."
    )


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


class ScorerSpec(_Strict):
    """How each draw is scored into [0, 1]."""

    name: ScorerName = Field("rouge_l_recall", description="Scoring function.")
    pattern: str | None = Field(
        None, max_length=10_000, description="Regular expression, required for `regex`."
    )

    @model_validator(mode="after")
    def _pattern_fits_name(self) -> ScorerSpec:
        if self.name == "regex":
            if self.pattern is None:
                raise ValueError("scorer 'regex' needs a 'pattern'")
            try:
                # The scorer searches with the `regex` module (it has timeouts), so validate
                # with the same dialect.
                regex.compile(self.pattern)
            except regex.error as exc:
                raise ValueError(f"'pattern' is not a valid regular expression: {exc}") from exc
        return self


class JobCreate(BoundsOptions):
    """POST /v1/jobs: an evaluation job."""

    model: str = Field(min_length=1, max_length=256, description="A model served by live samplers.")
    prompts: list[PromptSpec] = Field(min_length=1, description="Prompts to sample.")
    sampling: SamplingSpec = Field(default_factory=SamplingSpec)
    scorer: ScorerSpec = Field(default_factory=ScorerSpec)
    greedy: bool = Field(True, description="Also record one temperature-0 generation per prompt.")
    callback_url: str | None = Field(
        None,
        max_length=2048,
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

    @field_validator("callback_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None:
            check_callback_url_shape(value)
        return value

    @model_validator(mode="after")
    def _max_n_is_n(self) -> JobCreate:
        # With a stopping rule, sampling.n follows stopping.max_n, so that every count of
        # draws planned (limits, progress, sample pages) reads one number. A different n that
        # the caller set is an error, reported by the submission checks as stopping.max_n.
        if self.stopping is not None and "n" not in self.sampling.model_fields_set:
            self.sampling = self.sampling.model_copy(update={"n": self.stopping.max_n})
            self.sampling.model_fields_set.add("n")
        return self


def check_callback_url_shape(url: str) -> None:
    """Scheme and host of a callback URL (the address checks need DNS: shared/callbacks.py)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"not a valid URL: {exc}") from exc
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"scheme must be http or https, got {parts.scheme or 'none'!r}")
    if not parts.hostname:
        raise ValueError("the URL has no host")
    if parts.username is not None or parts.password is not None:
        raise ValueError("credentials in the URL are not allowed")
    if port == 0:
        raise ValueError("port 0 is not allowed")


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
    callback_url: str | None = Field(None, max_length=2048, description="As on POST /v1/jobs.")

    @field_validator("callback_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None:
            check_callback_url_shape(value)
        return value


class JobStatus(StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in (JobStatus.succeeded, JobStatus.failed, JobStatus.cancelled)


class ErrorInfo(BaseModel):
    """The one error shape: in every 4xx/5xx body and in a failed job's record."""

    code: str = Field(description="Machine-readable error code.")
    message: str = Field(description="What went wrong, naming the field and allowed values.")
    param: str | None = Field(None, description="The offending field, as a dotted path.")


class ErrorResponse(BaseModel):
    error: ErrorInfo


class Progress(BaseModel):
    samples_done: int = Field(description="Draws generated and scored so far.")
    samples_total: int = Field(
        description="Draws the job asks for (prompts x n); for an adaptive job, the draws "
        "planned so far (rounds scheduled), which grows as rounds are added."
    )


class AdaptiveProgress(BaseModel):
    """Where an adaptive job's prompts stand."""

    prompts_open: int = Field(description="Prompts still drawing rounds.")
    prompts_stopped: int = Field(description="Prompts their stopping rule (or max_draws) stopped.")


class JobAccepted(BaseModel):
    id: str
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


class CallbackDelivery(StrEnum):
    none = "none"  # the job has not ended yet
    pending = "pending"
    delivered = "delivered"
    failed = "failed"


class CallbackState(BaseModel):
    """Where the webhook of a job with a ``callback_url`` stands."""

    url: str
    state: CallbackDelivery = Field(
        description="none until the job ends; pending while attempts go on; delivered (a 2xx "
        "answer); failed once the retry window has passed or the address was refused."
    )
    attempts: int = Field(0, description="POSTs tried so far.")
    last_error: str | None = Field(None, description="Why the last attempt failed.")
    delivered_at: float | None = Field(None, description="Unix time (s) of the 2xx answer.")


class JobListItem(JobView):
    """One job in GET /v1/jobs: its view plus the number of prompts."""

    prompts: int = Field(description="Number of prompts in the job.")


class JobList(BaseModel):
    """GET /v1/jobs: the caller's jobs, newest first."""

    jobs: list[JobListItem]
    next_after: str | None = Field(
        description="Pass as `after` for the next page; null on the last page."
    )


class GreedyResult(BaseModel):
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
    id: str
    n: int
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


class JobResults(BaseModel):
    """GET /v1/jobs/{id}/results."""

    id: str
    status: JobStatus
    alpha: float
    partial: bool = Field(False, description="True when the job was cancelled before n draws.")
    source_job: str | None = Field(
        None, description="For a rescore job: the job whose stored draws these results score."
    )
    prompts: list[PromptResult]
    summary: ResultsSummary
    assumptions: str


class Sample(BaseModel):
    index: int
    text: str
    score: float | None


class SamplesPage(BaseModel):
    samples: list[Sample]
    total: int


class ModelInfo(BaseModel):
    name: str
    engine: str
    workers: int


class ModelList(BaseModel):
    models: list[ModelInfo]


# --------------------------------------------------------------------------------------------
# Queue payloads
# --------------------------------------------------------------------------------------------


class ChunkSlice(BaseModel):
    """Draws ``start .. start + count - 1`` of prompt ``prompt_index``."""

    prompt_index: int
    start: int
    count: int


class ChunkTask(BaseModel):
    """One RQ job: a sampling chunk, then the scoring of the same draws."""

    job_id: str
    chunk_id: int
    greedy: bool = Field(False, description="A temperature-0, one-draw-per-prompt chunk.")
    slices: list[ChunkSlice]
