"""A chunk whose engine is unavailable goes back on its queue without spending an attempt, the
worker waits for the engine before taking another, and a refused key stops the worker.

Real Redis and RQ (ChunkWorker under ``serve``), a fake engine that fails on demand.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import redis
from fastapi.testclient import TestClient
from rq.job import Job
from rq.serializers import JSONSerializer

from shared import keys
from shared.config import Settings
from shared.queues import rq_connection, sample_queue
from shared.store import Store
from tests.fixtures.fakes import FakeEngine
from tests.fixtures.pipeline import drain, worker_runtime
from workers.availability import Availability
from workers.runtime import Runtime
from workers.sampler.generation import (
    Completion,
    EngineRefused,
    EngineUnavailable,
    GenerationRequest,
)
from workers.sampler.main import Heartbeat
from workers.supervision import chunk_worker, serve

MODEL = "tiny"


class FailingEngine(FakeEngine):
    """Raises the queued failures first, one per call, then draws like ``FakeEngine``."""

    def __init__(self, failures: Sequence[Exception]) -> None:
        super().__init__()
        self.failures = list(failures)

    def generate(self, requests: Sequence[GenerationRequest]) -> list[list[Completion]]:
        if self.failures:
            self.calls.append(list(requests))
            raise self.failures.pop(0)
        return super().generate(requests)


def submit(client: TestClient) -> str:
    # tests/fixtures/gateway.py: chunks of at most 128 draws, so this job has several.
    body = {
        "model": MODEL,
        "prompts": [
            {"id": f"q{i}", "prompt": f"question {i}", "reference": "paris"} for i in (0, 1)
        ],
        "sampling": {"n": 128, "max_tokens": 4, "seed": 5},
    }
    resp = client.post("/v1/jobs", json=body)
    assert resp.status_code == 202, resp.text
    return str(resp.json()["id"])


def sample_chunks(conn: redis.Redis) -> list[Job]:
    queue = sample_queue(conn, MODEL)
    return [Job.fetch(i, connection=conn, serializer=JSONSerializer) for i in queue.get_job_ids()]


class Reopener(threading.Thread):
    """Plays the heartbeat's probe: whenever the gate is closed, reopens it shortly after."""

    def __init__(self, availability: Availability) -> None:
        super().__init__(daemon=True)
        self.availability = availability
        self.closed_seen = 0
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(0.05):
            if not self.availability.up:
                self.closed_seen += 1
                self.availability.refresh()


def test_deferred_chunks_spend_no_attempt_even_on_their_last(
    client: TestClient, settings: Settings
) -> None:
    failures = [EngineUnavailable("endpoint http://fleet does not answer")] * 5
    engine = FailingEngine(failures)
    rt = worker_runtime(settings, engine, MODEL)
    job_id = submit(client)
    conn = rq_connection(settings.redis_url)
    chunks = sample_chunks(conn)
    assert len(chunks) > 1
    for job in chunks:  # every chunk is on its last attempt: one spent attempt would fail it
        conn.hset(job.key, "retries_left", 0)

    availability = Availability(lambda: None, up=True)
    reopener = Reopener(availability)
    reopener.start()
    try:
        fatal = serve(
            chunk_worker([sample_queue(conn, MODEL)], rt, availability=availability),
            "deferral-test",
            rt,
            burst=True,
        )
    finally:
        reopener.stopped.set()
    assert fatal is None
    assert len(engine.failures) == 0 and reopener.closed_seen >= 5  # each deferral closed the gate
    drain(rt)

    view = client.get(f"/v1/jobs/{job_id}").json()
    assert view["status"] == "succeeded", view
    assert view["error"] is None
    assert view["progress"] == {"samples_done": 256, "samples_total": 256}
    for job in chunks:
        job.refresh()
        assert job.retries_left == 0, job.id


def test_a_refused_key_puts_the_chunk_back_and_stops_the_worker(
    client: TestClient, settings: Settings
) -> None:
    engine = FailingEngine([EngineRefused("endpoint http://fleet refused this worker's key")])
    rt = worker_runtime(settings, engine, MODEL)
    job_id = submit(client)
    conn = rq_connection(settings.redis_url)
    before = sorted(j.id for j in sample_chunks(conn))

    fatal = serve(chunk_worker([sample_queue(conn, MODEL)], rt), "refused-test", rt)
    assert fatal == "endpoint http://fleet refused this worker's key"
    assert len(engine.calls) == 1  # it stopped after the one chunk, without being asked to
    after = sample_chunks(conn)
    assert sorted(j.id for j in after) == before  # the chunk is queued again, none lost
    assert all(j.retries_left == 2 for j in after)
    view = client.get(f"/v1/jobs/{job_id}").json()
    assert view["status"] in ("queued", "running") and view["error"] is None


def test_heartbeat_lists_the_model_only_while_the_engine_answers(
    settings: Settings, store: Store
) -> None:
    verdict: list[str | None] = [None]
    availability = Availability(lambda: verdict[0], up=True)
    rt = Runtime(settings=settings, store=store, rq=rq_connection(settings.redis_url))
    heartbeat = Heartbeat(rt, "ep", "w1", "openai-compatible http://fleet (ep)", availability)

    def listed() -> list[str]:
        return [m.name for m in store.live_models(ttl_s=60)]

    heartbeat.tick()
    assert listed() == ["ep"]
    verdict[0] = "endpoint http://fleet does not answer"
    heartbeat.tick()
    assert listed() == [] and not availability.up
    assert availability.reason == "endpoint http://fleet does not answer"
    verdict[0] = None
    heartbeat.tick()
    assert listed() == ["ep"] and availability.up
    assert store.r.zcard(keys.model_workers("ep")) == 1


def test_availability_counts_a_probe_that_raises_as_down() -> None:
    def broken() -> Any:
        raise EngineRefused("endpoint refused the key")

    availability = Availability(broken, up=True)
    assert availability.refresh() is False
    assert availability.reason == "probe failed: EngineRefused: endpoint refused the key"
    assert availability.wait_until_up(0.01) is False
