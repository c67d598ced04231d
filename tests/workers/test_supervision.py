"""Supervision against the real test Redis, in process: an abandoned chunk (its worker died:
the StartedJobRegistry entry expired) is re-queued while it has retries and fails its job with
a stored error once they are spent; cancelling drops the queued chunks."""

from __future__ import annotations

from typing import Any

import redis
from fastapi.testclient import TestClient
from rq import Queue
from rq.executions import Execution
from rq.job import JobStatus as RqStatus
from rq.serializers import JSONSerializer

from shared.config import Settings
from shared.queues import drop_chunks, sample_queue
from shared.schemas import JobStatus
from shared.store import Store
from workers import runtime
from workers.supervision import clean_abandoned

BODY: dict[str, Any] = {
    "model": "tiny",
    "prompts": [{"id": "p0", "prompt": "q", "reference": "r"}],
    "sampling": {"n": 8, "max_tokens": 4},
    "greedy": False,
}


def submit(client: TestClient) -> str:
    resp = client.post("/v1/jobs", json=BODY)
    assert resp.status_code == 202, resp.text
    return str(resp.json()["id"])


def start_and_abandon(queue: Queue, job_class: type[runtime.RuntimeJob], retries_left: int) -> str:
    """Do what a worker does when it takes a chunk, then die: the execution's heartbeat
    expires at once (ttl 0), as after a kill -9."""
    rq_id = queue.get_job_ids()[0]
    job = job_class.fetch(rq_id, connection=queue.connection, serializer=JSONSerializer)
    queue.connection.lrem(queue.key, 0, rq_id)
    job.retries_left = retries_left
    job.save()
    job.set_status(RqStatus.STARTED)
    with queue.connection.pipeline() as pipe:
        Execution.create(job, ttl=0, pipeline=pipe, worker_name="killed-worker")
        pipe.execute()
    return rq_id


def test_an_abandoned_chunk_is_requeued_then_fails_its_job(
    client: TestClient, settings: Settings, store: Store, redis_client: redis.Redis
) -> None:
    job_id = submit(client)
    rt = runtime.build(settings)
    job_class = runtime.RuntimeJob.bound_to(rt)
    queue = sample_queue(rt.rq, "tiny")

    rq_id = start_and_abandon(queue, job_class, retries_left=1)
    clean_abandoned(rt.rq, [queue], None, lease_s=5, job_class=job_class)
    assert rq_id in queue.get_job_ids()  # back on the queue: one attempt spent
    assert store.get_status(job_id) == JobStatus.queued

    start_and_abandon(queue, job_class, retries_left=0)
    clean_abandoned(rt.rq, [queue], None, lease_s=5, job_class=job_class)
    job = store.get_job(job_id)
    assert job.status == JobStatus.failed
    assert job.error is not None and job.error.code == "chunk_failed"
    assert "stopped without finishing" in job.error.message


def test_a_cleaner_holding_the_lease_is_not_doubled(
    client: TestClient, settings: Settings, store: Store
) -> None:
    job_id = submit(client)
    rt = runtime.build(settings)
    job_class = runtime.RuntimeJob.bound_to(rt)
    queue = sample_queue(rt.rq, "tiny")
    start_and_abandon(queue, job_class, retries_left=0)
    rt.rq.set(queue.registry_cleaning_key, 1, ex=30)  # another worker is cleaning this queue
    clean_abandoned(rt.rq, [queue], None, lease_s=5, job_class=job_class)
    assert store.get_status(job_id) == JobStatus.queued
    rt.rq.delete(queue.registry_cleaning_key)
    clean_abandoned(rt.rq, [queue], None, lease_s=5, job_class=job_class)
    assert store.get_status(job_id) == JobStatus.failed


def test_drop_chunks_cancels_queued_chunks_with_a_ttl_then_deletes_them(
    client: TestClient, settings: Settings, store: Store
) -> None:
    job_id = submit(client)
    rt = runtime.build(settings)
    queue = sample_queue(rt.rq, "tiny")
    chunk_ids = [c.chunk_id for c in store.chunk_plan(job_id)]
    rq_ids = queue.get_job_ids()
    assert len(rq_ids) == len(chunk_ids) >= 1
    assert drop_chunks(rt.rq, job_id, chunk_ids, delete=False) == len(rq_ids)
    assert queue.get_job_ids() == []
    for rq_id in rq_ids:
        assert 0 < rt.rq.ttl(f"rq:job:{rq_id}") <= settings.retention_s
    assert drop_chunks(rt.rq, job_id, chunk_ids, delete=True) == len(rq_ids)
    assert all(not rt.rq.exists(f"rq:job:{rq_id}") for rq_id in rq_ids)
