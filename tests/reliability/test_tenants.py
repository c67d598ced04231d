"""Tenant isolation and the exact active-jobs quota against the real gateway process with API keys
(the full route matrix is in tests/services/gateway/test_auth.py, through the same app in
process)."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx
import pytest

from shared.schemas import ChunkSlice, ChunkTask, JobCreate, JobStatus
from shared.store import ACTIVE, Store, connect
from tests.fixtures.reliability import AUTH_A, AUTH_B, MODEL, RELIABILITY_ENV, ApiGateway

pytestmark = [pytest.mark.slow]

BODY = {
    "model": MODEL,
    "prompts": [{"id": "q", "prompt": "p", "reference": "r"}],
    "sampling": {"n": 2, "max_tokens": 2},
}


def test_keys_and_tenants_on_the_real_gateway(api_gateway: ApiGateway) -> None:
    with httpx.Client(base_url=api_gateway.base, timeout=30) as c:
        assert c.post("/v1/jobs", json=BODY).status_code == 401
        wrong = {"Authorization": "Bearer nope"}
        assert c.post("/v1/jobs", json=BODY, headers=wrong).status_code == 401
        job_id = c.post("/v1/jobs", json=BODY, headers=AUTH_A).json()["id"]
        for method, path in [
            ("GET", f"/v1/jobs/{job_id}"),
            ("GET", f"/v1/jobs/{job_id}/results"),
            ("GET", f"/v1/jobs/{job_id}/samples?prompt_id=q"),
            ("DELETE", f"/v1/jobs/{job_id}"),
            ("DELETE", f"/v1/jobs/{job_id}?purge=true"),
        ]:
            resp = c.request(method, path, headers=AUTH_B)
            assert resp.status_code == 404, (method, path, resp.text)
            assert resp.json()["error"]["code"] == "not_found"
        assert c.get(f"/v1/jobs/{job_id}", headers=AUTH_A).json()["status"] == "queued"
        assert c.delete(f"/v1/jobs/{job_id}?purge=true", headers=AUTH_A).status_code == 204


def test_concurrent_submits_one_below_the_quota_get_exactly_one_202(
    api_gateway: ApiGateway,
) -> None:
    """The quota is exact on the real gateway: with the tenant one job below its limit, 24
    concurrent submits on 24 connections get one 202 and 23 429s."""
    store = Store(connect(api_gateway.redis_url), retention_s=3600)
    limit = int(RELIABILITY_ENV["PROBEVAL_MAX_ACTIVE_JOBS_PER_TENANT"])
    spec = JobCreate.model_validate(BODY)
    filler = [f"fill{i:04d}" + "0" * 24 for i in range(limit - 1)]
    for job_id in filler:
        chunk = ChunkTask(
            job_id=job_id, chunk_id=0, slices=[ChunkSlice(prompt_index=0, start=0, count=2)]
        )
        assert store.create_job(job_id, spec, [chunk], tenant="team-b").accepted
    assert store.active_jobs("team-b") == limit - 1

    async def fire(racers: int) -> list[httpx.Response]:
        clients = [httpx.AsyncClient(base_url=api_gateway.base, timeout=60) for _ in range(racers)]
        try:
            return await asyncio.gather(
                *(c.post("/v1/jobs", json=BODY, headers=AUTH_B) for c in clients)
            )
        finally:
            await asyncio.gather(*(c.aclose() for c in clients))

    responses = asyncio.run(fire(24))
    codes = Counter(r.status_code for r in responses)
    assert codes == Counter({202: 1, 429: 23}), [r.text for r in responses]
    assert store.active_jobs("team-b") == limit
    accepted = next(r.json()["id"] for r in responses if r.status_code == 202)
    for job_id in [*filler, accepted]:  # free the tenant for any later test
        store.set_status(job_id, JobStatus.cancelled, allowed_from=ACTIVE)
    assert store.active_jobs("team-b") == 0
