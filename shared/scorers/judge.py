"""The judge scorer's options and its pure rules: template placeholders, label first tokens and
the score from label log-probabilities. Used by the gateway (checks at submit) and by the judge
model's samplers (scoring), so both apply the same rules."""

from __future__ import annotations

import hashlib
import math
import string
from collections.abc import Callable, Mapping
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.errors import InvalidInput

PLACEHOLDERS = ("prompt", "response", "reference")
MAX_LABELS = 32  # vLLM returns log-probabilities of at most 128 chosen token ids per request


# A judge template as the OpenAPI document states it: text, the literal braces {{ and }}, and
# the placeholders, {response} at least once. The server enforces it as well as
# ``template_fields`` (every string it matches passes those checks), so both agree exactly.
_TOKEN = r"(?:[^{}]|\{\{|\}\}|\{(?:" + "|".join(PLACEHOLDERS) + r")\})"
TEMPLATE_PATTERN = rf"^{_TOKEN}*\{{response\}}{_TOKEN}*$"
# A {reference} placeholder in a template that matches TEMPLATE_PATTERN: "{reference}" after an
# even number of "{" (an odd run ends with the field's own brace).
TEMPLATE_USES_REFERENCE = r"(?:^|[^{])(?:\{\{)*\{reference\}"


def template_fields(template: str) -> set[str]:
    """The placeholders a judge template uses; ValueError for anything but the allowed names.

    ``{{`` and ``}}`` are literal braces. Only bare names are allowed: no attribute access,
    indexing, conversion or format spec, because the template comes from a request and is
    filled by plain substitution (``render_template``), never by ``str.format``.
    """
    used: set[str] = set()
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(
            f"malformed template ({exc}); write literal braces as {{{{ and }}}}"
        ) from exc
    for _literal, field, spec, conversion in parsed:
        if field is None:
            continue
        if field not in PLACEHOLDERS or spec or conversion:
            shown = (
                "{"
                + field
                + (f"!{conversion}" if conversion else "")
                + (f":{spec}" if spec else "")
                + "}"
            )
            raise ValueError(
                f"unknown placeholder {shown}; allowed: "
                + ", ".join("{" + p + "}" for p in PLACEHOLDERS)
                + " (write literal braces as {{ and }})"
            )
        used.add(field)
    if "response" not in used:
        raise ValueError("the template must contain {response}: the draw the judge reads")
    return used


def render_template(template: str, values: Mapping[str, str]) -> str:
    """Substitute the placeholders (already checked by ``template_fields``)."""
    out: list[str] = []
    for literal, field, _spec, _conversion in string.Formatter().parse(template):
        out.append(literal)
        if field is not None:
            out.append(values[field])
    return "".join(out)


def template_sha256(template: str) -> str:
    """The judge template's hash, stored with results so a run names the template it used."""
    return hashlib.sha256(template.encode()).hexdigest()


LabelText = Annotated[str, Field(min_length=1, max_length=256)]
LabelValue = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]


class JudgeOptions(BaseModel):
    """Options of the ``judge`` scorer."""

    model_config = ConfigDict(extra="forbid", strict=True)

    judge_model: str = Field(
        min_length=1, max_length=256, description="A model served by live samplers: the judge."
    )
    template: str = Field(
        min_length=1,
        max_length=20_000,
        pattern=TEMPLATE_PATTERN,
        description="The judge's prompt. Placeholders: {prompt} (the prompt as the policy model "
        "saw it: the rendered chat text for `messages`), {response} (the draw; required), "
        "{reference} (the prompt's reference). Literal braces: {{ and }}. Rendered through the "
        "judge's chat template when it has one.",
    )
    labels: dict[LabelText, LabelValue] = Field(
        min_length=2,
        max_length=MAX_LABELS,
        description="Label text -> value in [0, 1]. The score is sum(value * P(label)) / "
        "sum(P(label)) over the labels' first tokens after the judge prompt; the labels must "
        "have distinct first tokens in the judge's tokenizer.",
    )

    @field_validator("template", mode="before")
    @classmethod
    def _placeholders(cls, template: Any) -> Any:
        # Before the pattern, so that a wrong placeholder gets a sentence rather than the pattern.
        if isinstance(template, str):
            template_fields(template)
        return template


def label_first_tokens(
    labels: Mapping[str, float], encode: Callable[[str], list[int]]
) -> dict[str, int]:
    """Each label's first token id under ``encode`` (no special tokens added); InvalidInput
    naming ``scorer.labels`` when a label encodes to nothing or two labels share a first token."""
    first: dict[str, int] = {}
    by_token: dict[int, str] = {}
    for text in labels:
        ids = encode(text)
        if not ids:
            raise InvalidInput(
                f"scorer.labels: label {text!r} encodes to no token", param="scorer.labels"
            )
        if ids[0] in by_token:
            raise InvalidInput(
                f"scorer.labels: labels {by_token[ids[0]]!r} and {text!r} start with the same "
                f"token (id {ids[0]}) in the judge's tokenizer; the score reads one token, so "
                "labels need distinct first tokens",
                param="scorer.labels",
            )
        by_token[ids[0]] = text
        first[text] = ids[0]
    return first


def label_score(logprobs: Mapping[str, float], labels: Mapping[str, float]) -> float:
    """sum(value * P(label)) / sum(P(label)) from the labels' first-token log-probabilities,
    computed stably (shifted by the largest log-probability). Deterministic and in [0, 1]."""
    top = max(logprobs[t] for t in labels)
    if not math.isfinite(top):
        raise ValueError("every label has probability 0 under the judge")
    weights = {t: math.exp(logprobs[t] - top) for t in labels}
    total = sum(weights.values())
    score = sum(labels[t] * w for t, w in weights.items()) / total
    return min(1.0, max(0.0, score))
