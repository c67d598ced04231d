"""Every documented error: one shape, the right status, the field named, nothing enqueued."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient

from shared import keys


def job(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": "tiny",
        "prompts": [{"id": "q1", "prompt": "Where is Paris?", "reference": "France"}],
        "sampling": {"n": 8, "max_tokens": 8},
    }
    body.update(overrides)
    return body


def assert_error(
    resp: Any, status: int, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "param"}
    assert body["error"]["message"]
    if param is not None:
        assert body["error"]["param"] == param
    if code is not None:
        assert body["error"]["code"] == code
    return body["error"]


def nothing_enqueued(r: redis.Redis) -> bool:
    return (
        r.llen(keys.rq_queue_list(keys.sample_queue("tiny"))) == 0 and r.zcard(keys.JOBS_INDEX) == 0
    )


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"prompts": [{"id": "a", "prompt": "x", "reference": "y"}]}, "model"),
        (job(prompts=[]), "prompts"),
        # Neither prompt nor messages: the error names the prompt and both fields.
        (job(prompts=[{"id": "a", "reference": "y"}]), "prompts[0]"),
        (job(sampling={"n": 0}), "sampling.n"),
        (job(sampling={"n": "many"}), "sampling.n"),
        (job(sampling={"temperature": -1}), "sampling.temperature"),
        (job(sampling={"top_p": 0}), "sampling.top_p"),
        (job(scorer={"name": "bleu"}), "scorer.name"),
        (job(alpha=0), "alpha"),
        (job(alpha=1.5), "alpha"),
        (job(thresholds=[1.5]), "thresholds[0]"),
        (job(unknown_field=1), "unknown_field"),
        (job(scorer={"name": "regex"}), "scorer.pattern"),
        (job(scorer={"name": "regex", "pattern": "(unclosed"}), "scorer.pattern"),
    ],
)
def test_invalid_fields_are_422_naming_the_field(
    client: TestClient, redis_client: redis.Redis, body: dict[str, Any], param: str
) -> None:
    err = assert_error(client.post("/v1/jobs", json=body), 422, param=param)
    assert param.split(".")[0].split("[")[0] in err["message"] or err["param"] == param
    assert nothing_enqueued(redis_client)


def test_scorer_name_error_lists_allowed_values(client: TestClient) -> None:
    err = assert_error(
        client.post("/v1/jobs", json=job(scorer={"name": "bleu"})), 422, "scorer.name"
    )
    for name in ("rouge_l_recall", "rouge_l_f", "exact_match", "contains", "regex"):
        assert name in err["message"]


def test_unknown_model_is_404_naming_the_model(
    client: TestClient, redis_client: redis.Redis
) -> None:
    err = assert_error(client.post("/v1/jobs", json=job(model="gpt-9")), 404, "model")
    assert "gpt-9" in err["message"] and "tiny" in err["message"]
    assert nothing_enqueued(redis_client)


@pytest.mark.parametrize(
    ("sampling", "param"),
    [({"n": 4096}, "sampling.n"), ({"max_tokens": 1000}, "sampling.max_tokens")],
)
def test_limits_are_422_naming_the_limit(
    client: TestClient, redis_client: redis.Redis, sampling: dict[str, int], param: str
) -> None:
    err = assert_error(
        client.post("/v1/jobs", json=job(sampling=sampling)), 422, param, "limit_exceeded"
    )
    assert "limit" in err["message"]
    assert nothing_enqueued(redis_client)


def test_total_draws_limit(client: TestClient, redis_client: redis.Redis) -> None:
    prompts = [{"id": str(i), "prompt": "p", "reference": "r"} for i in range(20)]
    assert_error(
        client.post("/v1/jobs", json=job(prompts=prompts, sampling={"n": 2000})), 422, "sampling.n"
    )
    assert nothing_enqueued(redis_client)


def test_scorer_needing_reference_without_one(
    client: TestClient, redis_client: redis.Redis
) -> None:
    prompts = [{"id": "a", "prompt": "p", "reference": "r"}, {"id": "b", "prompt": "p"}]
    err = assert_error(
        client.post("/v1/jobs", json=job(prompts=prompts)), 422, "prompts[1].reference"
    )
    assert "rouge_l_recall" in err["message"]
    assert nothing_enqueued(redis_client)


def test_regex_scorer_needs_no_reference(client: TestClient) -> None:
    body = job(prompts=[{"id": "a", "prompt": "p"}], scorer={"name": "regex", "pattern": "Paris"})
    assert client.post("/v1/jobs", json=body).status_code == 202


def test_duplicate_prompt_ids(client: TestClient, redis_client: redis.Redis) -> None:
    prompts = [{"id": "a", "prompt": "p", "reference": "r"}] * 2
    assert_error(client.post("/v1/jobs", json=job(prompts=prompts)), 422, "prompts[1].id")
    assert nothing_enqueued(redis_client)


def test_body_over_size_limit_is_413(client: TestClient, redis_client: redis.Redis) -> None:
    big = job(prompts=[{"id": "a", "prompt": "x" * 300_000, "reference": "r"}])
    assert_error(client.post("/v1/jobs", json=big), 413, code="body_too_large")
    assert nothing_enqueued(redis_client)


def test_chunked_body_over_size_limit_is_413(client: TestClient, redis_client: redis.Redis) -> None:
    """No Content-Length (chunked transfer): the limit counts the body as it streams."""
    raw = json.dumps(job(prompts=[{"id": "a", "prompt": "x" * 300_000, "reference": "r"}]))

    def pieces() -> Iterator[bytes]:
        data = raw.encode()
        for start in range(0, len(data), 65_536):
            yield data[start : start + 65_536]

    resp = client.post("/v1/jobs", content=pieces(), headers={"content-type": "application/json"})
    assert "content-length" not in {k.lower() for k in resp.request.headers}
    assert_error(resp, 413, code="body_too_large")
    assert nothing_enqueued(redis_client)


def test_broken_json_is_400(client: TestClient, redis_client: redis.Redis) -> None:
    resp = client.post(
        "/v1/jobs", content=b'{"model": ', headers={"content-type": "application/json"}
    )
    assert_error(resp, 400, code="invalid_json")
    assert nothing_enqueued(redis_client)


@pytest.mark.parametrize(
    "path", ["/v1/jobs/nope", "/v1/jobs/nope/results", "/v1/jobs/nope/samples?prompt_id=a"]
)
def test_unknown_job_is_404(client: TestClient, path: str) -> None:
    assert_error(client.get(path), 404, code="not_found")


def test_cancel_unknown_job_is_404(client: TestClient) -> None:
    assert_error(client.delete("/v1/jobs/nope"), 404)


def test_unknown_route_has_the_error_shape(client: TestClient) -> None:
    assert_error(client.get("/v1/nothing"), 404)


def test_bounds_endpoint_rejects_out_of_range_scores(client: TestClient) -> None:
    resp = client.post("/v1/bounds", json={"scores": [[0.5, 1.5]]})
    assert resp.status_code == 422
    assert_error(resp, 422)


def test_method_not_allowed_lists_every_method_of_the_path(client: TestClient) -> None:
    # GET and DELETE /v1/jobs/{id} are two routes; Allow must name both (RFC 9110 15.5.6).
    resp = client.options("/v1/jobs/some-id")
    assert resp.status_code == 405
    assert {m.strip() for m in resp.headers["allow"].split(",")} >= {"GET", "DELETE"}
    assert resp.json()["error"]["code"] == "method_not_allowed"
    assert "DELETE" in resp.json()["error"]["message"]
    resp = client.put("/v1/jobs")
    assert {m.strip() for m in resp.headers["allow"].split(",")} >= {"GET", "POST"}


def test_bounds_rows_rules_are_in_the_schema_and_enforced(client: TestClient) -> None:
    resp = client.post("/v1/bounds", json={"scores": [[0.5], []]})
    assert resp.status_code == 422 and resp.json()["error"]["param"] == "scores[1]"
    spec = client.get("/openapi.json").json()["components"]["schemas"]["BoundsRequest"]
    rows = spec["properties"]["scores"]
    assert rows["minItems"] == 1 and rows["items"]["minItems"] == 1
    assert rows["items"]["items"]["minimum"] == 0.0 and rows["items"]["items"]["maximum"] == 1.0


def test_unknown_query_parameter_is_422_naming_it_and_the_allowed_ones(
    client: TestClient,
) -> None:
    err = assert_error(client.get("/v1/jobs", params={"stauts": "running"}), 422, "stauts")
    assert "allowed: after, limit, model, status" in err["message"]
    # A route that declares none says so; a declared one still works.
    err = assert_error(client.get("/v1/models", params={"x": "1"}), 422, "x")
    assert err["message"].endswith("allowed: none")
    assert client.get("/v1/jobs", params={"limit": "5"}).status_code == 200
    # The UI's page shells are outside the API's schema: their scripts read the query.
    assert client.get("/ui/jobs", params={"status": "running", "model": "x"}).status_code == 200
