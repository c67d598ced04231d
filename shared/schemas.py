"""One schema for everything that crosses a process boundary: HTTP bodies, queue payloads and
the records stored in Redis. Field descriptions become the OpenAPI documentation.
"""

from __future__ import annotations

import uuid
from enum import StrEnum
from types import UnionType
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union, cast, get_args, get_origin
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationInfo,
    create_model,
    field_validator,
    model_validator,
)

from shared.scorers import SCORERS, ScorerDefinition
from shared.scorers.judge import TEMPLATE_USES_REFERENCE
from shared.stats.difference import Decision
from shared.stats.family import Family
from shared.stats.leak import MAX_K


def _integral(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _takes_int(annotation: Any) -> bool:
    """Whether a field's type is int, ``int | None`` or a list of ints (Annotated or not)."""
    if annotation is int:
        return True
    if get_origin(annotation) is Annotated:
        return _takes_int(get_args(annotation)[0])
    if get_origin(annotation) in (list, Union, UnionType):
        return any(_takes_int(arg) for arg in get_args(annotation))
    return False


class _Strict(BaseModel):
    """Unknown fields are an error, not silently dropped: a typo must not change a job. Types are
    strict too: ``"n": "10"`` or ``"n": true`` is a 422, not a silent conversion.

    One exception, because JSON has a single number type: a number with no fractional part
    (``53.0``) is the integer it equals, as JSON Schema's ``integer`` (what OpenAPI states for
    every int field) says. ``53.5`` stays an error; float fields accept ints anyway."""

    model_config = ConfigDict(extra="forbid", strict=True)

    @field_validator("*", mode="before")
    @classmethod
    def _integral_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        # Integer fields and lists of them (k); nested models apply this themselves. Float
        # fields keep the value as given, so that an error echoes it as sent.
        field = cls.model_fields.get(info.field_name or "")
        if field is None or not _takes_int(field.annotation):
            return value
        if isinstance(value, list):
            return [_integral(v) for v in value]
        return _integral(value)


# A callback URL, as the OpenAPI document states it: http(s), an ASCII host (DNS name, IPv4 or
# a bracketed IPv6 address), an optional port in 1..65535, no credentials, printable ASCII after.
# Every URL it matches passes ``check_callback_url_shape`` (which words the errors), and the
# server enforces the pattern itself, so schema and server accept exactly the same strings.
_H16 = "[0-9A-Fa-f]{1,4}"
_IPV6 = "|".join(
    [
        f"(?:{_H16}:){{7}}{_H16}",
        f"(?:{_H16}:){{1,7}}:",
        f"(?:{_H16}:){{1,6}}:{_H16}",
        *(f"(?:{_H16}:){{1,{6 - i}}}(?::{_H16}){{1,{i + 1}}}" for i in range(1, 6)),
        f":(?:(?::{_H16}){{1,7}}|:)",
    ]
)
_LABEL = "[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_PORT = "(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3})"
CALLBACK_URL_PATTERN = (
    rf"^https?://(?:{_LABEL}(?:\.{_LABEL})*\.?|\[(?:{_IPV6})\])(?::{_PORT})?(?:[/?#][!-~]*)?$"
)


def _callback_shape(value: Any) -> Any:
    # Before the pattern, so that the usual mistakes get a sentence rather than the pattern.
    if isinstance(value, str):
        check_callback_url_shape(value)
    return value


# The validator wraps the constrained str, so that it runs first and the pattern is in the schema.
CallbackUrl = Annotated[
    str, Field(max_length=2048, pattern=CALLBACK_URL_PATTERN), BeforeValidator(_callback_shape)
]


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
    """Bounds on P(X > x): the one-sided DKW upper bound (paper: M_gen), joint over all
    thresholds, and Clopper-Pearson on the count #{X_i > x}, exact for this one threshold."""

    x: float = Field(description="The threshold x.")
    upper: float = Field(description="DKW upper bound on P(X > x) at level 1 - alpha.")
    cp_lower: float | None = Field(
        None,
        description="One-sided Clopper-Pearson lower bound on P(X > x) at 1 - alpha, valid for "
        "this threshold alone (chosen before sampling).",
    )
    cp_upper: float | None = Field(
        None,
        description="One-sided Clopper-Pearson upper bound on P(X > x) at 1 - alpha, valid for "
        "this threshold alone (chosen before sampling); tighter than `upper` for small tails.",
    )


class QuantileBound(_Strict):
    """Bounds on the q-quantile of X: the upper from the one-sided DKW band, the lower from
    binomial order statistics (exact for this level alone)."""

    q: float = Field(description="The quantile level q.")
    upper: float = Field(description="Upper bound on the q-quantile at level 1 - alpha.")
    lower: float | None = Field(
        None,
        description="One-sided lower bound on the q-quantile at 1 - alpha: the order statistic "
        "x_(j), j - 1 the largest i with P(Binomial(n, q) <= i) <= alpha (0 if none).",
    )


class LeakBounds(_Strict):
    """Clopper-Pearson bounds on p = P(X >= leak_at), the chance that one draw leaks."""

    threshold: float = Field(description="leak_at: a draw with score >= it counts as a leak.")
    c: int = Field(description="Draws that leaked.")
    lower: float = Field(description="One-sided lower bound on p at level 1 - alpha.")
    upper: float = Field(description="One-sided upper bound on p at level 1 - alpha.")


class LeakAtKBound(_Strict):
    """leak@k = 1 - (1 - p)^k: the chance that k independent draws contain a leak."""

    k: int = Field(description="Number of draws of the attacker.")
    estimate: float | None = Field(
        description="Unbiased estimate 1 - C(n - c, k) / C(n, k); null when k > n (no unbiased "
        "estimator exists from n draws)."
    )
    lower: float = Field(description="1 - (1 - p_lower)^k: one-sided at 1 - alpha (exact).")
    upper: float = Field(description="1 - (1 - p_upper)^k: one-sided at 1 - alpha (exact).")


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
    leak: LeakBounds | None = None
    leak_at_k: list[LeakAtKBound] = Field(default_factory=list)


# A score, threshold or quantile level: a finite number in the closed unit interval.
UnitLevel = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]
# The k of leak@k: attacker draws.
KValue = Annotated[int, Field(ge=1, le=MAX_K)]


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
    k: list[KValue] = Field(
        default_factory=lambda: [1, 10, 100],
        max_length=16,
        description=f"Attacker draws k for leak@k, each an integer in [1, {MAX_K}]; at most 16.",
    )
    leak_at: float = Field(
        1.0,
        ge=0.0,
        le=1.0,
        description="Score in [0, 1] at or above which a draw counts as a leak.",
    )

    def options(self) -> BoundsOptions:
        """Just the bound options of this model (a job or a request carries more fields)."""
        return BoundsOptions.model_validate(
            {name: getattr(self, name) for name in BoundsOptions.model_fields}
        )


class BoundsRequest(BoundsOptions):
    """POST /v1/bounds: scores the caller already has."""

    # The row rules are in the schema (a client generated from it sends no empty row and no
    # score outside [0, 1]); compute_bounds checks them again for its other callers.
    scores: list[Annotated[list[UnitLevel], Field(min_length=1)]] = Field(
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


# --------------------------------------------------------------------------------------------
# Jobs: the HTTP request, the stored record and the views returned to callers.
# --------------------------------------------------------------------------------------------

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


def _scorer_variant(definition: ScorerDefinition) -> type[BaseModel]:
    """The request schema of one registered scorer: its options plus ``name``."""
    title = "".join(part.capitalize() for part in definition.name.split("_")) + "Scorer"
    variant: type[BaseModel] = create_model(
        title,
        __base__=definition.options,
        __doc__=definition.description,
        name=cast(Any, (Literal[definition.name], Field(description="The scorer's name."))),
    )
    return variant


SCORER_VARIANTS: dict[str, type[BaseModel]] = {
    name: _scorer_variant(d) for name, d in sorted(SCORERS.items())
}
if TYPE_CHECKING:

    class ScorerSpec(BaseModel):
        """What type checkers see: every variant has a ``name``; narrow with isinstance on
        the options class (e.g. ``JudgeOptions``)."""

        name: str

else:
    # A discriminated union on ``name`` built from the registry when this module is imported:
    # OpenAPI lists exactly the registered scorers and their options, and an unknown name is a
    # 422 that lists the registered ones.
    ScorerSpec = Annotated[
        Union[tuple(SCORER_VARIANTS.values())],  # noqa: UP007
        Field(discriminator="name", description="How each draw is scored into [0, 1]."),
    ]


def default_scorer() -> ScorerSpec:
    """The scorer a job gets when it names none: ROUGE-L recall against its references."""
    return cast("ScorerSpec", SCORER_VARIANTS["rouge_l_recall"](name="rouge_l_recall"))


def parse_scorer(data: dict[str, object]) -> ScorerSpec:
    """A ``scorer`` object validated against the registry (as in a job)."""
    return TypeAdapter(ScorerSpec).validate_python(data)


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


class ErrorInfo(BaseModel):
    """The one error shape: in every 4xx/5xx body and in a failed job's record."""

    code: str = Field(description="Machine-readable error code.")
    message: str = Field(description="What went wrong, naming the field and allowed values.")
    param: str | None = Field(None, description="The offending field, as a dotted path.")


class ErrorResponse(BaseModel):
    """The body of every 4xx/5xx response."""

    error: ErrorInfo


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


class CallbackDelivery(StrEnum):
    """Where a job's webhook delivery stands."""

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
        description="Pass as `after` for the next page (a job id); null on the last page.",
    )


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


class ModelInfo(BaseModel):
    """A model served by live sampler workers."""

    name: str
    engine: str
    workers: int
    chat_template: bool = Field(
        False, description="The model has a chat template: jobs may send `messages`."
    )


class ModelCapabilities(BaseModel):
    """What a model's samplers register besides liveness (stored per model)."""

    chat_template: bool = Field(description="The tokenizer has a chat template.")
    judging: bool = Field(False, description="The engine can score judge labels.")
    tokenizer_sha256: str | None = Field(
        None, description="SHA-256 of the registered tokenizer.json (null: none registered)."
    )


class ModelList(BaseModel):
    """GET /v1/models."""

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


# --------------------------------------------------------------------------------------------
# Decisions: comparing two jobs (POST /v1/compare) and planning draws (POST /v1/plan).
# --------------------------------------------------------------------------------------------

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


PlanTarget = Literal["certify", "mean_width", "leak_at_k"]


def _plan_rules(schema: dict[str, Any]) -> None:
    """What each target needs (shared.draw_budget), in the OpenAPI document."""
    number = {"type": "number"}
    schema["oneOf"] = [
        {"properties": {"target": {"const": "certify"}, "tau": number}, "required": ["tau"]},
        {
            "properties": {
                "target": {"const": "mean_width"},
                "width": number,
                # Adaptive stopping is simulated for P(leak) targets only.
                "assumed_p": {"type": "null"},
            },
            "required": ["width"],
        },
        {
            "properties": {
                "target": {"const": "leak_at_k"},
                "k": {"type": "integer"},
                "level": number,
            },
            "required": ["k", "level"],
        },
    ]


class PlanRequest(_Strict):
    """POST /v1/plan: how many draws per prompt a question needs, and what they cost."""

    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra=_plan_rules)

    target: PlanTarget = Field(
        description="certify: P(leak) < tau; mean_width: a two-sided interval on E[score] of "
        "width <= width; leak_at_k: leak@k < level."
    )
    alpha: float = Field(0.01, gt=0.0, le=0.5, description="Error level in (0, 0.5].")
    tau: float | None = Field(None, gt=0.0, lt=1.0, description="certify: the level of P(leak).")
    leaks: int = Field(
        0, ge=0, le=1_000_000, description="certify, leak_at_k: leaking draws allowed for."
    )
    width: float | None = Field(None, gt=0.0, lt=1.0, description="mean_width: the width.")
    k: int | None = Field(None, ge=1, le=MAX_K, description=f"leak_at_k: k in [1, {MAX_K}].")
    level: float | None = Field(None, gt=0.0, lt=1.0, description="leak_at_k: the level.")
    prompts: int = Field(1, ge=1, le=1_000_000, description="Prompts to plan for.")
    assumed_p: float | None = Field(
        None,
        ge=0.0,
        lt=1.0,
        description="certify, leak_at_k: a true P(leak) to simulate adaptive stopping at "
        "(the expected draws per prompt under the job's `stopping` rule).",
    )
    round: int = Field(64, ge=1, le=100_000, description="Adaptive: draws per round.")
    max_n: int | None = Field(
        None, ge=1, le=1_000_000, description="Adaptive: most draws per prompt (default 4 n)."
    )
    model: str | None = Field(
        None, min_length=1, max_length=256, description="A live model to price the draws with."
    )


class PlanCost(BaseModel):
    """Expected time on the live fleet, from the samplers' measured draws per second."""

    model: str
    workers: int = Field(description="Live samplers of the model now.")
    draws_per_s_per_worker: float | None = Field(
        description="Measured: draws generated / seconds inside the engine, over all samplers "
        "since the counters began (null before any draw was generated)."
    )
    expected_s: float | None = Field(
        description="prompts x n / (draws_per_s_per_worker x workers): engine time only, spread "
        "over the live samplers (null without a measurement)."
    )


class PlanAdaptive(BaseModel):
    """Expected draws per prompt with adaptive stopping (``stopping`` with target p_full and
    threshold tau) when P(leak) is ``assumed_p``: a seeded simulation of the service's rule."""

    assumed_p: float
    round: int
    max_n: int
    runs: int = Field(description="Simulated streams (seed 0).")
    expected_n: float = Field(description="Mean draws per prompt at the stop.")
    expected_n_se: float = Field(description="Monte Carlo standard error of expected_n.")
    certified_share: float = Field(
        description="Share of streams that stopped with P(leak) shown below tau."
    )


class PlanResponse(BaseModel):
    """POST /v1/plan: the draws per prompt a target needs, and their cost."""

    target: PlanTarget
    alpha: float
    n: int = Field(description="Draws per prompt needed with n fixed before sampling.")
    method: str = Field(description="How n was found and what it guarantees.")
    prompts: int
    draws_total: int
    adaptive: PlanAdaptive | None = None
    cost: PlanCost | None = None
