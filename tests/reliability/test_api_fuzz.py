"""Fuzzing the gateway's OpenAPI schema with schemathesis, against the real gateway process with
a valid API key: no 5xx, and every response (status, content type, headers, body) as documented.

Cases come from schemathesis' Hypothesis strategies (positive and negative data) for every
operation, with a fixed seed so a CI failure reproduces locally. (schemathesis' own pytest plugin
does not run under pytest 9, so the strategies are driven with ``@given`` here.)
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, seed, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.fixtures.reliability import AUTH_A, MODEL, ApiGateway

pytestmark = [pytest.mark.slow]

MIN_REQUESTS = 500
EXAMPLES_PER_OPERATION_AND_MODE = 40
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


def served_model(case: Any) -> Any:
    """Valid job bodies name the registered model, so that submissions get accepted too."""
    if isinstance(case.body, dict) and isinstance(case.body.get("model"), str):
        case.body["model"] = MODEL
    return case


def fuzz_operation(
    operation: Any, mode: GenerationMode, base: str, sent: dict[str, int], statuses: dict[str, int]
) -> None:
    label = f"{operation.method.upper()} {operation.path} ({mode.value})"
    strategy = operation.as_strategy(generation_mode=mode)
    if mode == GenerationMode.POSITIVE:
        strategy = strategy.map(served_model)

    @seed(20261129)
    @settings(
        max_examples=EXAMPLES_PER_OPERATION_AND_MODE,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    @given(case=strategy)
    def fuzz(case: Any) -> None:
        response = case.call_and_validate(base_url=base, headers=AUTH_A, checks=CHECKS)
        sent[label] = sent.get(label, 0) + 1
        key = f"{response.status_code} ({mode.value})"
        statuses[key] = statuses.get(key, 0) + 1
        assert response.status_code < 500, (case.method, case.path, response.text)

    try:
        fuzz()
    except Unsatisfiable:
        # Negative data for an operation without parameters or body: there is none.
        assert mode == GenerationMode.NEGATIVE, label


def test_fuzz_every_operation(api_gateway: ApiGateway, figures: dict[str, Any]) -> None:
    schema = schemathesis.openapi.from_url(f"{api_gateway.base}/openapi.json")
    sent: dict[str, int] = {}
    statuses: dict[str, int] = {}
    for result in schema.get_all_operations():
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            fuzz_operation(result.ok(), mode, api_gateway.base, sent, statuses)
    total = sum(sent.values())
    figures["fuzz"] = {
        "requests": total,
        "by_status": dict(sorted(statuses.items())),
        "by_operation": sent,
    }
    assert total >= MIN_REQUESTS, sent
