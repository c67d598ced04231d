"""Retention: every Redis key that holds a job's data expires (PROBEVAL_RETENTION_S), whether the
job succeeded, was cancelled part-way or failed. In process (gateway TestClient, RQ burst workers,
fake engine) against a real redis-server: what is checked is the keys the real code writes."""

from __future__ import annotations

import pytest
import redis
from fastapi.testclient import TestClient

from shared import keys
from shared.config import Settings
from tests.fixtures.fakes import FakeEngine
from tests.fixtures.pipeline import drain, worker_runtime

RETENTION_S = 4321
BODY = {
    "model": "tiny",
    "prompts": [{"id": f"q{i}", "prompt": f"question {i}", "reference": "paris"} for i in range(2)],
    "sampling": {"n": 40, "max_tokens": 4},
}


@pytest.fixture()
def settings(redis_url: str) -> Settings:
    return Settings(redis_url=redis_url, retention_s=RETENTION_S, chunk_max_n=16, chunk_draws=32)


def job_keys(r: redis.Redis, job_id: str) -> list[str]:
    """Every key naming the job: probeval's and RQ's (chunk records, executions, results)."""
    return sorted(str(k) for k in r.scan_iter(match=f"*{job_id}*", count=1000))


def assert_all_expire(r: redis.Redis, job_id: str, *, at_least: int) -> None:
    names = job_keys(r, job_id)
    assert len(names) >= at_least, names
    ttls = {name: r.ttl(name) for name in names}
    forever = [n for n, t in ttls.items() if t < 0]
    assert not forever, f"keys without a TTL: {forever}"
    probeval_keys = [n for n in names if n.startswith(keys.PREFIX)]
    assert all(0 < ttls[n] <= RETENTION_S for n in probeval_keys), ttls


def test_every_key_of_a_succeeded_job_expires(
    client: TestClient, settings: Settings, redis_client: redis.Redis
) -> None:
    rt = worker_runtime(settings, FakeEngine(), "tiny")
    job_id = client.post("/v1/jobs", json=BODY).json()["id"]
    drain(rt)
    assert client.get(f"/v1/jobs/{job_id}").json()["status"] == "succeeded"
    # record, chunk plan, scored-chunks set, texts and scores per prompt, greedy, results
    assert_all_expire(redis_client, job_id, at_least=9)


def test_every_key_of_a_cancelled_job_expires(
    client: TestClient, settings: Settings, redis_client: redis.Redis
) -> None:
    rt = worker_runtime(settings, FakeEngine(), "tiny")
    job_id = client.post("/v1/jobs", json=BODY).json()["id"]
    assert client.delete(f"/v1/jobs/{job_id}").status_code == 200
    drain(rt)
    assert_all_expire(redis_client, job_id, at_least=2)


def test_every_key_of_a_failed_job_expires(
    client: TestClient, settings: Settings, redis_client: redis.Redis
) -> None:
    rt = worker_runtime(settings, FakeEngine(max_prompt_chars=5), "tiny")  # every prompt too long
    job_id = client.post("/v1/jobs", json=BODY).json()["id"]
    drain(rt)
    assert client.get(f"/v1/jobs/{job_id}").json()["status"] == "failed"
    assert_all_expire(redis_client, job_id, at_least=2)
