"""The client-side routes in one process (gateway TestClient, real Redis, fake engine): listing,
exports, rescoring and callback validation, with two tenants. The real-process versions are in
tests/e2e/test_client_side.py."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from services.gateway.main import create_app
from shared import keys
from shared.bounds import compute_bounds
from shared.callbacks import sign, verify
from shared.config import Settings
from shared.schemas import BoundsOptions
from shared.store import Store
from tests.fixtures.fakes import FakeEngine
from tests.fixtures.pipeline import drain, register_model, worker_runtime
from workers.callbacks import deliver_callback
from workers.scorer.scoring import contains

A = {"Authorization": "Bearer key-of-a"}
B = {"Authorization": "Bearer key-of-b"}


@pytest.fixture()
def settings(redis_url: str) -> Settings:
    return Settings(
        redis_url=redis_url,
        api_keys="team-a:key-of-a,team-b:key-of-b",
        webhook_secrets="team-a:secret-a",
        callback_allowed_networks="127.0.0.0/8",
        chunk_max_n=32,
        chunk_draws=64,
    )


@pytest.fixture()
def c(settings: Settings, store: Store) -> Iterator[TestClient]:
    register_model(store, "tiny")
    register_model(store, "other")
    with TestClient(create_app(settings)) as client:
        yield client


def body(model: str = "tiny", n: int = 40, **extra: Any) -> dict[str, Any]:
    return {
        "model": model,
        "prompts": [
            {"id": "q0", "prompt": "question 0", "reference": "paris"},
            {"id": "q1", "prompt": "question 1", "reference": "the capital"},
        ],
        "sampling": {"n": n, "max_tokens": 4},
        "thresholds": [0.5],
        "quantiles": [0.9],
        **extra,
    }


def submit(c: TestClient, headers: dict[str, str] = A, **kw: Any) -> str:
    resp = c.post("/v1/jobs", json=body(**kw), headers=headers)
    assert resp.status_code == 202, resp.text
    return str(resp.json()["id"])


def error(resp: Any, status: int) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    err: dict[str, Any] = resp.json()["error"]
    assert set(err) == {"code", "message", "param"}
    return err


# ---- GET /v1/jobs ----------------------------------------------------------------------------


def test_list_pages_newest_first_with_filters_and_tenants(c: TestClient) -> None:
    ids = [submit(c, model="tiny" if i % 3 else "other") for i in range(8)]
    other_tenant = submit(c, headers=B)
    assert c.delete(f"/v1/jobs/{ids[1]}", headers=A).status_code == 200
    pages, after = [], None
    while True:
        params: dict[str, Any] = {"limit": 3, **({"after": after} if after else {})}
        page = c.get("/v1/jobs", params=params, headers=A).json()
        pages.append([j["id"] for j in page["jobs"]])
        after = page["next_after"]
        if after is None:
            break
    assert pages == [ids[::-1][0:3], ids[::-1][3:6], ids[::-1][6:8]]
    # Each item is exactly the job's view plus its prompt count.
    for item in c.get("/v1/jobs", params={"limit": 200}, headers=A).json()["jobs"]:
        prompts = item.pop("prompts")
        assert prompts == 2 and item == c.get(f"/v1/jobs/{item['id']}", headers=A).json()
    first = c.get("/v1/jobs", params={"limit": 1}, headers=A).json()["jobs"][0]
    assert first["prompts"] == 2 and first["progress"]["samples_total"] == 80
    assert first["status"] == "queued" and first["model"] == "tiny"

    other = c.get("/v1/jobs", params={"model": "other"}, headers=A).json()
    assert [j["id"] for j in other["jobs"]] == [ids[6], ids[3], ids[0]]
    cancelled = c.get("/v1/jobs", params={"status": "cancelled"}, headers=A).json()
    assert [j["id"] for j in cancelled["jobs"]] == [ids[1]]
    both = c.get("/v1/jobs", params={"status": "queued", "model": "other", "limit": 2}, headers=A)
    assert [j["id"] for j in both.json()["jobs"]] == [ids[6], ids[3]]
    assert both.json()["next_after"] == ids[3]

    assert [j["id"] for j in c.get("/v1/jobs", headers=B).json()["jobs"]] == [other_tenant]
    assert error(c.get("/v1/jobs"), 401)["code"] == "unauthorized"
    # Another tenant's job is not a cursor of this one: not found, as its id would be; a cursor
    # that is not a job id at all is malformed.
    assert error(c.get("/v1/jobs", params={"after": other_tenant}, headers=A), 404)["param"] == (
        "after"
    )
    assert error(c.get("/v1/jobs", params={"after": "0"}, headers=A), 422)["param"] == "after"
    err = error(c.get("/v1/jobs", params={"status": "done"}, headers=A), 422)
    assert err["param"] == "status" and "succeeded" in err["message"]


def test_list_drops_expired_records_from_the_index(
    c: TestClient, store: Store, redis_client: Any
) -> None:
    ids = [submit(c) for _ in range(3)]
    redis_client.delete(keys.job(ids[1]))  # as if its retention had passed
    page = c.get("/v1/jobs", headers=A).json()
    assert [j["id"] for j in page["jobs"]] == [ids[2], ids[0]]
    assert redis_client.zcard(keys.tenant_jobs("team-a")) == 2


# ---- exports ---------------------------------------------------------------------------------


def run_job(c: TestClient, settings: Settings, **kw: Any) -> str:
    job_id = submit(c, **kw)
    drain(worker_runtime(settings, FakeEngine(seed=3), "tiny"))
    assert c.get(f"/v1/jobs/{job_id}", headers=A).json()["status"] == "succeeded"
    return job_id


def paged_samples(c: TestClient, job_id: str, prompt_id: str) -> list[dict[str, Any]]:
    page = c.get(
        f"/v1/jobs/{job_id}/samples", params={"prompt_id": prompt_id, "limit": 1000}, headers=A
    )
    return [{"prompt_id": prompt_id, **s} for s in page.json()["samples"]]


def test_exports_equal_the_samples_and_results_endpoints(c: TestClient, settings: Settings) -> None:
    job_id = run_job(c, settings)
    expected = paged_samples(c, job_id, "q0") + paged_samples(c, job_id, "q1")
    assert len(expected) == 80

    resp = c.get(f"/v1/jobs/{job_id}/samples.jsonl", headers=A)
    assert resp.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in resp.text.splitlines()]
    assert lines == expected

    draws = pq.read_table(io.BytesIO(c.get(f"/v1/jobs/{job_id}/export.parquet", headers=A).content))
    assert draws.column_names == ["prompt_id", "index", "text", "score"]
    assert draws.to_pylist() == expected

    results = c.get(f"/v1/jobs/{job_id}/results", headers=A).json()
    table = pq.read_table(
        io.BytesIO(c.get(f"/v1/jobs/{job_id}/export.parquet?table=results", headers=A).content)
    ).to_pylist()
    assert [r["id"] for r in table] == ["q0", "q1"]
    for row, prompt in zip(table, results["prompts"], strict=True):
        b = prompt["bounds"]
        assert row["bounds.expectation.upper"] == b["expectation"]["upper"]
        assert row["bounds.ed.lambda"] == b["ed"]["lambda"]
        assert row["bounds.survival[x=0.5].upper"] == b["survival"][0]["upper"]
        assert row["bounds.quantiles[q=0.9].upper"] == b["quantiles"][0]["upper"]
        assert row["full_score.lower"] == prompt["full_score"]["lower"]
        assert row["greedy.text"] == prompt["greedy"]["text"]

    csv_text = c.get(f"/v1/jobs/{job_id}/results.csv", headers=A).text
    header, *rows = csv_text.splitlines()
    assert len(rows) == 2 and header.split(",")[0] == "id"
    column = header.split(",").index("bounds.expectation.upper")
    assert (
        float(rows[1].split(",")[column]) == results["prompts"][1]["bounds"]["expectation"]["upper"]
    )


def test_exports_bad_input_and_tenants(c: TestClient, settings: Settings) -> None:
    job_id = run_job(c, settings)
    queued = submit(c)
    err = error(c.get(f"/v1/jobs/{job_id}/export.parquet?table=csv", headers=A), 422)
    assert err["param"] == "table" and "draws" in err["message"]
    assert error(c.get(f"/v1/jobs/{job_id}/export.xlsx", headers=A), 404)["code"] == "not_found"
    assert error(c.get(f"/v1/jobs/{queued}/results.csv", headers=A), 409)["code"] == "conflict"
    for path in ("samples.jsonl", "export.parquet", "results.csv"):
        assert error(c.get(f"/v1/jobs/{job_id}/{path}", headers=B), 404)["param"] == "id"
        assert error(c.get(f"/v1/jobs/{job_id}/{path}"), 401)["param"] == "Authorization"


# ---- rescore ---------------------------------------------------------------------------------


def test_rescore_scores_the_stored_draws_again_without_sampling(
    c: TestClient, settings: Settings, store: Store, redis_client: Any
) -> None:
    source = run_job(c, settings)
    generated = redis_client.hgetall(keys.METRICS_DRAWS_GENERATED)
    resp = c.post(
        f"/v1/jobs/{source}/rescore",
        json={"scorer": {"name": "contains"}, "alpha": 0.05},
        headers=A,
    )
    assert resp.status_code == 202, resp.text
    new = resp.json()["id"]
    assert resp.headers["location"] == f"/v1/jobs/{new}"
    # Only the score queue has work: nothing to sample.
    assert redis_client.llen(keys.rq_queue_list(keys.sample_queue("tiny"))) == 0
    drain(worker_runtime(settings, FakeEngine(seed=3), "tiny"))
    view = c.get(f"/v1/jobs/{new}", headers=A).json()
    assert view["status"] == "succeeded" and view["source_job"] == source
    assert redis_client.hgetall(keys.METRICS_DRAWS_GENERATED) == generated

    results = c.get(f"/v1/jobs/{new}/results", headers=A).json()
    assert results["source_job"] == source and results["alpha"] == 0.05
    # By hand: the source's stored draws, scored with `contains`, through the same bounds.
    references = {"q0": "paris", "q1": "the capital"}
    rows = [
        [contains(s["text"], references[p]) for s in paged_samples(c, source, p)]
        for p in ("q0", "q1")
    ]
    expected = compute_bounds(
        rows, BoundsOptions(alpha=0.05, thresholds=[0.5], quantiles=[0.9])
    ).model_dump(by_alias=True)["rows"]
    assert [p["bounds"] for p in results["prompts"]] == expected
    source_greedy = c.get(f"/v1/jobs/{source}/results", headers=A).json()["prompts"][0]["greedy"]
    assert results["prompts"][0]["greedy"]["text"] == source_greedy["text"]
    # The new job's draws are the source's.
    assert paged_samples(c, new, "q1")[5]["text"] == paged_samples(c, source, "q1")[5]["text"]


def test_rescore_bad_input(c: TestClient, settings: Settings) -> None:
    source = run_job(c, settings)
    queued = submit(c)
    err = error(
        c.post(f"/v1/jobs/{queued}/rescore", json={"scorer": {"name": "contains"}}, headers=A), 409
    )
    assert err["code"] == "conflict" and "succeeded" in err["message"]
    err = error(
        c.post(f"/v1/jobs/{source}/rescore", json={"scorer": {"name": "bleu"}}, headers=A), 422
    )
    assert err["param"] == "scorer.name" and "exact_match" in err["message"]
    err = error(
        c.post(f"/v1/jobs/{source}/rescore", json={"scorer": {"name": "regex"}}, headers=A), 422
    )
    assert err["param"] == "scorer.pattern"
    assert error(c.post(f"/v1/jobs/{source}/rescore", json={}, headers=A), 422)["param"] == (
        "scorer"
    )
    assert (
        error(
            c.post(f"/v1/jobs/{source}/rescore", json={"scorer": {"name": "contains"}}, headers=B),
            404,
        )["param"]
        == "id"
    )
    assert (
        error(c.post(f"/v1/jobs/{source}/rescore", json={"scorer": {"name": "contains"}}), 401)[
            "code"
        ]
        == "unauthorized"
    )


# ---- callbacks -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("ftp://example.com/hook", "scheme must be http or https"),
        ("http:///hook", "no host"),
        ("http://user:pw@example.com/", "credentials"),
        ("http://10.1.2.3/hook", "private address"),
        ("http://169.254.169.254/latest/meta-data", "metadata"),
        ("http://[::1]:9/hook", "loopback"),
        ("http://localhost.invalid/hook", "does not resolve"),
    ],
)
def test_bad_callback_urls_are_refused(c: TestClient, url: str, words: str) -> None:
    resp = c.post("/v1/jobs", json=body(callback_url=url), headers=A)
    err = error(resp, 422)
    assert err["param"] == "callback_url" and words in err["message"], err


def test_loopback_callback_needs_the_allowed_networks(
    redis_url: str, store: Store, c: TestClient
) -> None:
    assert (
        c.post("/v1/jobs", json=body(callback_url="http://127.0.0.1:9/h"), headers=A).status_code
        == 202
    )
    # team-b has no webhook secret: a callback could not be signed.
    err = error(c.post("/v1/jobs", json=body(callback_url="http://127.0.0.1:9/h"), headers=B), 422)
    assert err["param"] == "callback_url" and "PROBEVAL_WEBHOOK_SECRETS" in err["message"]
    strict = Settings(redis_url=redis_url, api_keys="team-a:key-of-a", webhook_secrets="*:s")
    with TestClient(create_app(strict)) as other:
        err = error(
            other.post("/v1/jobs", json=body(callback_url="http://127.0.0.1:9/h"), headers=A), 422
        )
        assert "loopback" in err["message"] and "127.0.0.1" in err["message"]


def test_signature_matches_openssl_and_verifies() -> None:
    # Reference: printf '%s' '1700000000.{"id":"j"}' | openssl dgst -sha256 -hmac 'whsec-test'
    header = sign("whsec-test", 1700000000, b'{"id":"j"}')
    assert header == (
        "t=1700000000,v1=41b08bba665cca7e3436faf7ffbe3375c985832c97cb10b7911c71c8f6084071"
    )
    assert verify("whsec-test", header, b'{"id":"j"}', now=1700000100)
    assert not verify("whsec-test", header, b'{"id":"k"}', now=1700000100)
    assert not verify("other", header, b'{"id":"j"}', now=1700000100)
    assert not verify("whsec-test", header, b'{"id":"j"}', now=1700001000)  # too old


def test_delivery_checks_the_address_again_and_refuses_without_posting(
    redis_url: str, store: Store, c: TestClient
) -> None:
    """A callback accepted at submission (loopback allowed then) is refused at delivery when the
    address is no longer allowed: failed at once, no retry, nothing sent."""
    job_id = submit(c, callback_url="http://127.0.0.1:9/hook")
    assert c.delete(f"/v1/jobs/{job_id}", headers=A).status_code == 200
    assert c.get(f"/v1/jobs/{job_id}", headers=A).json()["callback"]["state"] == "pending"
    strict = Settings(redis_url=redis_url, webhook_secrets="team-a:secret-a")
    outcome = deliver_callback(worker_runtime(strict, None, "tiny"), job_id)
    assert "loopback" in outcome["refused"]
    callback = c.get(f"/v1/jobs/{job_id}", headers=A).json()["callback"]
    assert callback["state"] == "failed" and callback["attempts"] == 1
    assert "127.0.0.1" in callback["last_error"]
