"""The 422s that the JSON Schema of a request cannot state, listed in the OpenAPI document.

Every rule that JSON Schema can say is in the request models (``shared/schemas/``): ranges,
patterns, ``oneOf`` per plan target, the reference a scorer needs. What is left depends on the
deployment's settings, on server state (DNS, a model's tokenizer or chat template), on a
computation's size, or compares items with each other (unique ids). Each operation lists those
in ``x-rejections-beyond-schema``: the field (``[]`` for any index) or ``*``, the error code, and
the rule. A client generated from the schema can show them; the schemathesis test allows a 422
for schema-valid data only when its field and code are listed here.
"""

from __future__ import annotations

from typing import Any

__all__ = ["JOB_RULES", "PLAN_RULES", "RESCORE_RULES", "BoundaryRule", "openapi_extra"]

BoundaryRule = tuple[str, str, str]  # (field, error code, the rule)

_LIMITS: BoundaryRule = (
    "*",
    "limit_exceeded",
    "Over a limit the deployment sets (PROBEVAL_MAX_N, PROBEVAL_MAX_TOKENS_LIMIT, "
    "PROBEVAL_MAX_PROMPTS_PER_JOB, PROBEVAL_MAX_DRAWS_PER_JOB); the message names the limit.",
)
_CALLBACK: BoundaryRule = (
    "callback_url",
    "invalid_input",
    "The host must resolve, only to public addresses or PROBEVAL_CALLBACK_ALLOWED_NETWORKS, and "
    "PROBEVAL_WEBHOOK_SECRETS must hold a secret for the tenant (webhooks are signed).",
)
_LABELS: BoundaryRule = (
    "scorer.labels",
    "invalid_input",
    "The labels must have distinct first tokens in the judge model's tokenizer.",
)

_JUDGING: BoundaryRule = (
    "scorer.judge_model",
    "invalid_input",
    "The judge model's samplers must judge (a self-hosted model with a tokenizer).",
)

JOB_RULES: list[BoundaryRule] = [
    _LIMITS,
    _CALLBACK,
    _LABELS,
    ("prompts[].id", "invalid_input", "Prompt ids are unique within a job."),
    (
        "prompts[].messages",
        "invalid_input",
        "`messages` needs a model whose samplers registered a chat template (GET /v1/models: "
        "chat_template).",
    ),
    _JUDGING,
    ("stopping.min_n", "invalid_input", "min_n <= stopping.max_n."),
    ("stopping.round", "invalid_input", "round <= stopping.max_n."),
    (
        "stopping.max_n",
        "invalid_input",
        "With a stopping rule, sampling.n (if given) equals stopping.max_n.",
    ),
    (
        "max_draws",
        "invalid_input",
        "max_draws covers at least every prompt's first round and at most prompts x max_n.",
    ),
]
RESCORE_RULES: list[BoundaryRule] = [
    _LIMITS,
    _CALLBACK,
    _LABELS,
    (
        "prompts[].reference",
        "invalid_input",
        "A scorer that compares with a reference needs one in every prompt of the source job.",
    ),
    _JUDGING,
]
PLAN_RULES: list[BoundaryRule] = [
    (
        "target",
        "invalid_input",
        "The question must be answerable with at most 1,000,000,000 draws per prompt.",
    ),
    (
        "round",
        "invalid_input",
        "The adaptive simulation takes at most 1,000 rounds: round >= max_n / 1000.",
    ),
    ("max_n", "invalid_input", "The simulated max_n (default 4 n) is at most 1,000,000."),
]


def openapi_extra(rules: list[BoundaryRule]) -> dict[str, Any]:
    """The operation's ``x-rejections-beyond-schema`` entry (FastAPI's ``openapi_extra``)."""
    return {
        "x-rejections-beyond-schema": [
            {"field": field, "code": code, "rule": rule} for field, code, rule in rules
        ]
    }
