"""API keys and tenants: 401 without a valid key, 404 for another tenant's job everywhere."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from services.gateway.auth import KeyRing, is_loopback
from services.gateway.main import create_app
from shared.config import Settings
from shared.store import Store
from tests.fixtures.pipeline import register_model

A = {"Authorization": "Bearer key-of-a"}
B = {"Authorization": "Bearer key-of-b"}
BODY = {
    "model": "tiny",
    "prompts": [{"id": "q", "prompt": "p", "reference": "r"}],
    "sampling": {"n": 4, "max_tokens": 4},
}


@pytest.fixture()
def authed(redis_url: str, store: Store, tmp_path: Path) -> Iterator[TestClient]:
    key_file = tmp_path / "keys"
    key_file.write_text(f"# tenant sha256\nteam-b {hashlib.sha256(b'key-of-b').hexdigest()}\n")
    settings = Settings(
        redis_url=redis_url,
        api_keys="team-a:key-of-a",
        api_keys_file=str(key_file),
        max_active_jobs_per_tenant=2,
    )
    register_model(store, "tiny")
    with TestClient(create_app(settings)) as c:
        yield c


def submit(c: TestClient, headers: dict[str, str]) -> Any:
    return c.post("/v1/jobs", json=BODY, headers=headers)


@pytest.mark.parametrize(
    ("method", "path"),
    [("get", "/v1/models"), ("post", "/v1/jobs"), ("get", "/v1/jobs/x"), ("post", "/v1/bounds")],
)
def test_no_or_wrong_key_is_401(authed: TestClient, method: str, path: str) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic a2V5"}):
        resp = authed.request(method, path, headers=headers, json=BODY)
        assert resp.status_code == 401, (headers, resp.text)
        assert resp.json()["error"]["code"] == "unauthorized"


def test_health_needs_no_key(authed: TestClient) -> None:
    assert authed.get("/healthz").status_code == 200
    assert authed.get("/readyz").status_code == 200


def test_other_tenant_gets_404_on_every_job_endpoint(authed: TestClient, store: Store) -> None:
    job_id = submit(authed, A).json()["id"]
    paths = [
        ("get", f"/v1/jobs/{job_id}"),
        ("get", f"/v1/jobs/{job_id}/results"),
        ("get", f"/v1/jobs/{job_id}/report"),
        ("get", f"/v1/jobs/{job_id}/samples?prompt_id=q"),
        ("get", f"/v1/jobs/{job_id}/spec"),
        ("get", f"/v1/jobs/{job_id}/scores?prompt_id=q"),
        ("delete", f"/v1/jobs/{job_id}"),
        ("delete", f"/v1/jobs/{job_id}?purge=true"),
    ]
    for method, path in paths:
        resp = authed.request(method, path, headers=B)
        assert resp.status_code == 404, (path, resp.text)
        # Same answer as for a job that does not exist: no existence leak.
        other = authed.request(method, path.replace(job_id, "0" * 32), headers=B)
        assert resp.json()["error"]["message"].replace(job_id, "X") == other.json()["error"][
            "message"
        ].replace("0" * 32, "X")
    assert store.get_job(job_id).status.value == "queued"  # B's cancel did nothing
    assert authed.get(f"/v1/jobs/{job_id}", headers=A).status_code == 200


def test_active_jobs_limit_is_429_with_retry_after(authed: TestClient) -> None:
    assert submit(authed, A).status_code == 202
    assert submit(authed, A).status_code == 202
    resp = submit(authed, A)
    assert resp.status_code == 429
    assert int(resp.headers["retry-after"]) > 0
    assert resp.json()["error"]["code"] == "too_many_requests"
    assert submit(authed, B).status_code == 202  # limits are per tenant
    job_id = authed.get("/v1/jobs/x", headers=A)  # noqa: F841 - a 404 must not count
    first = submit(authed, B).json()["id"]
    assert authed.delete(f"/v1/jobs/{first}", headers=B).status_code == 200


def test_cancelling_frees_a_slot(authed: TestClient) -> None:
    ids = [submit(authed, A).json()["id"] for _ in range(2)]
    assert submit(authed, A).status_code == 429
    assert authed.delete(f"/v1/jobs/{ids[0]}", headers=A).status_code == 200
    assert submit(authed, A).status_code == 202


def test_purge_deletes_every_key_of_the_job(authed: TestClient, store: Store) -> None:
    job_id = submit(authed, A).json()["id"]
    assert authed.delete(f"/v1/jobs/{job_id}?purge=true", headers=A).status_code == 204
    assert authed.get(f"/v1/jobs/{job_id}", headers=A).status_code == 404
    assert not [k for k in store.r.scan_iter(match=f"*{job_id}*")]


def test_keyring_parsing_and_loopback() -> None:
    ring = KeyRing.from_settings(Settings(api_keys="a:1, b:2"))
    assert ring.enabled and ring.tenant_for("1") == "a" and ring.tenant_for("2") == "b"
    assert ring.tenant_for("3") is None
    assert not KeyRing.from_settings(Settings(api_keys="")).enabled
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.1.2.3")
