"""shared.metrics and GET /metrics against a real redis-server (the session fixture)."""

from __future__ import annotations

import time

import pytest
import redis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from services.gateway.routes import metrics as metrics_route
from shared import keys
from shared.config import Settings
from shared.metrics import (
    RedisStateCollector,
    record_generated,
    record_scored,
    record_status_change,
)
from shared.queues import rq_connection
from shared.schemas import JobStatus
from shared.store import Store

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(text: str) -> Samples:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(found: Samples, name: str, **labels: str) -> float:
    return found[(name, tuple(sorted(labels.items())))]


def scrape(client: redis.Redis, *, worker_ttl_s: float = 45.0) -> Samples:
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry()
    registry.register(RedisStateCollector(client, worker_ttl_s=worker_ttl_s))
    return samples(generate_latest(registry).decode())


def test_generated_and_scored_counters_add_up(redis_client: redis.Redis) -> None:
    record_generated(redis_client, "m1", draws=64, tokens=2048)
    record_generated(redis_client, "m1", draws=32, tokens=1000)
    record_generated(redis_client, "m2", draws=8, tokens=80)
    record_scored(redis_client, "m1", draws=90)
    found = scrape(redis_client)
    assert value(found, "probeval_draws_generated_total", model="m1") == 96
    assert value(found, "probeval_tokens_generated_total", model="m1") == 3048
    assert value(found, "probeval_draws_generated_total", model="m2") == 8
    assert value(found, "probeval_draws_scored_total", model="m1") == 90
    assert value(found, "probeval_draws_scored_total", model="m2") == 0
    with pytest.raises(ValueError, match="draws and tokens must be >= 0"):
        record_generated(redis_client, "m1", draws=-1, tokens=0)


def test_counters_work_on_rqs_bytes_client(redis_url: str, redis_client: redis.Redis) -> None:
    rq = rq_connection(redis_url)
    record_generated(rq, "m", draws=3, tokens=9)
    record_scored(rq, "m", draws=3)
    record_status_change(rq, None, b"queued")  # a status read with a bytes client
    found = scrape(rq)
    assert value(found, "probeval_draws_generated_total", model="m") == 3
    assert value(found, "probeval_draws_scored_total", model="m") == 3
    assert value(found, "probeval_jobs", status="queued") == 1


def test_status_counts_follow_a_job_through_its_life(redis_client: redis.Redis) -> None:
    record_status_change(redis_client, None, JobStatus.queued)  # job a created
    record_status_change(redis_client, None, "queued")  # job b created
    record_status_change(redis_client, JobStatus.queued, JobStatus.running)  # a starts
    found = scrape(redis_client)
    assert value(found, "probeval_jobs", status="queued") == 1
    assert value(found, "probeval_jobs", status="running") == 1
    assert value(found, "probeval_jobs_finished_total", status="succeeded") == 0

    record_status_change(redis_client, JobStatus.running, JobStatus.succeeded)  # a done
    record_status_change(redis_client, JobStatus.queued, JobStatus.cancelled)  # b cancelled
    record_status_change(redis_client, JobStatus.succeeded, None)  # a deleted: still counted
    record_status_change(redis_client, JobStatus.running, JobStatus.running)  # no transition
    found = scrape(redis_client)
    assert value(found, "probeval_jobs", status="queued") == 0
    assert value(found, "probeval_jobs", status="running") == 0
    assert value(found, "probeval_jobs_finished_total", status="succeeded") == 1
    assert value(found, "probeval_jobs_finished_total", status="cancelled") == 1
    assert value(found, "probeval_jobs_finished_total", status="failed") == 0

    record_status_change(redis_client, None, JobStatus.queued)
    record_status_change(redis_client, JobStatus.queued, None)  # an active job deleted
    assert value(scrape(redis_client), "probeval_jobs", status="queued") == 0


def test_status_change_joins_the_callers_transaction(redis_client: redis.Redis) -> None:
    pipe = redis_client.pipeline(transaction=True)
    pipe.hset(keys.job("j"), "status", "queued")
    record_status_change(pipe, None, JobStatus.queued)
    assert redis_client.hget(keys.METRICS_JOBS_BY_STATUS, "queued") is None  # not yet
    pipe.execute()
    assert redis_client.hget(keys.METRICS_JOBS_BY_STATUS, "queued") == "1"


def test_queue_depth_and_live_workers(redis_url: str, redis_client: redis.Redis) -> None:
    store = Store(redis_client, retention_s=60)
    store.heartbeat("m1", "w1", "fake", ttl_s=45)
    store.heartbeat("m1", "w2", "fake", ttl_s=45)
    store.heartbeat("m2", "w3", "fake", ttl_s=45)
    # w3's heartbeat is old: it no longer counts as live.
    redis_client.zadd(keys.model_workers("m2"), {"w3": time.time() - 100})
    for i in range(3):
        redis_client.rpush(keys.rq_queue_list(keys.sample_queue("m1")), f"id-{i}")
    redis_client.rpush(keys.rq_queue_list(keys.SCORE_QUEUE), "id-s")
    found = scrape(rq_connection(redis_url))
    assert value(found, "probeval_redis_up") == 1
    assert value(found, "probeval_queue_depth", queue=keys.sample_queue("m1")) == 3
    assert value(found, "probeval_queue_depth", queue=keys.sample_queue("m2")) == 0
    assert value(found, "probeval_queue_depth", queue=keys.SCORE_QUEUE) == 1
    assert value(found, "probeval_sampler_workers", model="m1") == 2
    assert value(found, "probeval_sampler_workers", model="m2") == 0
    assert value(found, "probeval_scorer_workers") == 0
    assert value(found, "probeval_queue_failed", queue=keys.SCORE_QUEUE) == 0


def test_a_scrape_survives_redis_being_down() -> None:
    dead = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5)
    found = scrape(dead)
    assert value(found, "probeval_redis_up") == 0
    assert not any(name.startswith("probeval_jobs") for name, _ in found)


# ---- the route and the latency middleware --------------------------------------------------------


@pytest.fixture()
def app(redis_url: str, redis_client: redis.Redis) -> FastAPI:
    # A bare app with the gateway's state attributes, so this does not depend on create_app.
    app = FastAPI()
    app.state.settings = Settings(redis_url=redis_url)
    app.state.rq = rq_connection(redis_url)

    @app.get("/items/{item_id}")
    def item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    app.include_router(metrics_route.router)
    metrics_route.install_request_metrics(app)
    return app


def test_metrics_route_serves_the_text_format(app: FastAPI, redis_client: redis.Redis) -> None:
    record_generated(redis_client, "m", draws=5, tokens=50)
    with TestClient(app) as client:
        response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    found = samples(response.text)
    assert value(found, "probeval_draws_generated_total", model="m") == 5
    assert any(name == "process_cpu_seconds_total" for name, _ in found)


def test_metrics_route_speaks_openmetrics_when_asked(app: FastAPI) -> None:
    with TestClient(app) as client:
        response = client.get("/metrics", headers={"Accept": "application/openmetrics-text"})
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    assert response.text.endswith("# EOF\n")


def test_latency_histogram_uses_route_templates(app: FastAPI) -> None:
    with TestClient(app) as client:
        for i in range(3):
            assert client.get(f"/items/{i}").status_code == 200
        assert client.get("/items/not-a-number").status_code == 422
        assert client.get("/nowhere").status_code == 404
        found = samples(client.get("/metrics").text)
    count = "probeval_http_request_duration_seconds_count"
    assert value(found, count, method="GET", route="/items/{item_id}", status="200") == 3
    assert value(found, count, method="GET", route="/items/{item_id}", status="422") == 1
    assert value(found, count, method="GET", route="<unmatched>", status="404") == 1
    assert not any("/items/1" in dict(labels).get("route", "") for _, labels in found)


def test_two_apps_in_one_process_keep_separate_registries(app: FastAPI, redis_url: str) -> None:
    # Tests build many apps; a process-global registry would raise "Duplicated timeseries".
    other = FastAPI()
    metrics_route.install_request_metrics(other)
    assert other.state.metrics_registry is not app.state.metrics_registry
