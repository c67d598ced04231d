"""The admission step and the tenant's active-jobs count (shared/job_record.py, through
shared.store.Store) against the real test redis-server: exact under concurrency, maintained by
every way a job stops being active, and nothing written when a job is refused."""

from __future__ import annotations

import threading
import time

import pytest
import redis
from rq.job import Job
from rq.serializers import JSONSerializer

from shared import keys
from shared.config import Settings
from shared.job_record import Verdict
from shared.queues import rq_connection, sample_queue, stage_chunks
from shared.schemas import ChunkSlice, ChunkTask, ErrorInfo, JobCreate, JobStatus
from shared.store import ACTIVE, Store, connect
from tests.fixtures.pipeline import register_model

SPEC = JobCreate.model_validate(
    {
        "model": "tiny",
        "prompts": [{"id": "q", "prompt": "p", "reference": "r"}],
        "sampling": {"n": 4},
    }
)


def chunks(job_id: str) -> list[ChunkTask]:
    return [
        ChunkTask(job_id=job_id, chunk_id=0, slices=[ChunkSlice(prompt_index=0, start=0, count=4)])
    ]


def admit(store: Store, job_id: str, *, tenant: str = "t", max_active: int | None = 3) -> Verdict:
    admission = store.create_job(
        job_id,
        SPEC,
        chunks(job_id),
        tenant=tenant,
        max_active=max_active,
        live_after=time.time() - 60,
    )
    return admission.verdict


def test_racing_submits_one_below_the_quota_admit_exactly_one(redis_url: str, store: Store) -> None:
    register_model(store, "tiny")
    limit = 5
    for i in range(limit - 1):
        assert admit(store, f"pre{i}", max_active=limit) is Verdict.ok
    racers = 16
    barrier = threading.Barrier(racers)
    verdicts: list[Verdict] = []
    lock = threading.Lock()

    def race(i: int) -> None:
        own = Store(connect(redis_url), retention_s=3600)  # a client (connection) per racer
        barrier.wait()
        verdict = admit(own, f"race{i}", max_active=limit)
        with lock:
            verdicts.append(verdict)

    threads = [threading.Thread(target=race, args=(i,)) for i in range(racers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(verdicts).count(Verdict.ok) == 1, verdicts
    assert verdicts.count(Verdict.quota) == racers - 1
    assert store.active_jobs("t") == limit
    # The refused racers left no trace.
    written = [j for j in (f"race{i}" for i in range(racers)) if store.r.exists(keys.job(j))]
    assert len(written) == 1


def test_active_count_follows_every_way_out(store: Store) -> None:
    register_model(store, "tiny")
    for name in ("done", "failed", "cancelled", "deleted", "left"):
        assert admit(store, name, max_active=10) is Verdict.ok
    assert store.active_jobs("t") == 5
    store.set_status("done", JobStatus.running, allowed_from=[JobStatus.queued])
    assert store.active_jobs("t") == 5  # running is still active
    store.set_status("done", JobStatus.succeeded, allowed_from=ACTIVE)
    error = ErrorInfo(code="x", message="y")
    store.set_status("failed", JobStatus.failed, allowed_from=ACTIVE, error=error)
    store.set_status("cancelled", JobStatus.cancelled, allowed_from=ACTIVE)
    store.delete_job("deleted")
    assert store.active_jobs("t") == 1
    assert store.active_jobs("other") == 0
    # A second terminal write changes nothing (compare-and-set), and neither does a late one.
    assert store.set_status("done", JobStatus.failed, allowed_from=ACTIVE) is None
    assert store.active_jobs("t") == 1


def test_a_job_whose_record_expired_no_longer_counts(redis_client: redis.Redis) -> None:
    short = Store(redis_client, retention_s=1)
    register_model(short, "tiny")
    assert admit(short, "a", max_active=1) is Verdict.ok
    assert admit(short, "b", max_active=1) is Verdict.quota
    time.sleep(1.2)
    assert not redis_client.exists(keys.job("a"))
    assert admit(short, "b", max_active=1) is Verdict.ok
    assert short.active_jobs("t") == 1


def test_refusals_write_nothing_and_quota_is_checked_first(store: Store) -> None:
    before = set(store.r.keys("*"))
    assert admit(store, "m") is Verdict.no_model  # no worker heartbeat at all
    assert set(store.r.keys("*")) == before
    register_model(store, "tiny")
    stale = store.create_job(
        "m", SPEC, chunks("m"), tenant="t", max_active=3, live_after=time.time() + 60
    )
    assert stale.verdict is Verdict.no_model  # heartbeats older than live_after are not live
    for i in range(3):
        assert admit(store, f"j{i}") is Verdict.ok
    metrics_before = store.r.hgetall(keys.METRICS_JOBS_BY_STATUS)
    refused = store.create_job("q", SPEC, chunks("q"), tenant="t", max_active=3, live_after=None)
    assert (refused.verdict, refused.active) == (Verdict.quota, 3)
    assert not store.r.exists(keys.job("q"), keys.job_chunks("q"))
    assert store.r.zscore(keys.JOBS_INDEX, "q") is None
    assert store.r.hgetall(keys.METRICS_JOBS_BY_STATUS) == metrics_before


def test_an_admitted_job_is_stored_whole(store: Store) -> None:
    register_model(store, "tiny")
    admission = store.create_job(
        "j", SPEC, chunks("j"), tenant="t", max_active=None, live_after=None
    )
    assert admission.accepted and admission.active == 1
    job = store.get_job("j", tenant="t")
    assert (job.status, job.samples_total, job.chunks_total, job.spec) == (
        JobStatus.queued,
        4,
        1,
        SPEC,
    )
    assert store.chunk_plan("j") == chunks("j")
    assert 0 < store.r.ttl(keys.job("j")) <= 3600
    assert 0 < store.r.ttl(keys.job_chunks("j")) <= 3600
    assert store.r.hget(keys.METRICS_JOBS_BY_STATUS, "queued") == "1"
    assert store.r.zscore(keys.JOBS_INDEX, "j") == pytest.approx(job.created_at)
    expires = store.r.zscore(keys.tenant_active_jobs("t"), "j")
    assert expires == pytest.approx(job.created_at + 3600)


def test_staged_enqueue_runs_in_the_admission_step_only_when_admitted(
    redis_url: str, store: Store
) -> None:
    """The chunks' RQ records and queue pushes are RQ's own commands (stage_chunks), run by
    the admission script: an admitted job's chunks are on the queue as RQ reads them, a
    refused job's are nowhere."""
    register_model(store, "tiny")
    settings = Settings()
    rq = rq_connection(redis_url)
    queue = sample_queue(rq, "tiny")
    plan = chunks("j")
    admission = store.create_job(
        "j", SPEC, plan, tenant="t", max_active=1, enqueue=stage_chunks(queue, plan, settings)
    )
    assert admission.accepted
    assert queue.job_ids == ["j-0-sample"]
    job = Job.fetch("j-0-sample", connection=rq, serializer=JSONSerializer)
    assert job.func_name == "workers.sampler.tasks.sample_chunk"
    assert list(job.args) == [plan[0].model_dump(mode="json")]  # JSON: a list
    assert (job.get_status(), job.timeout, job.retries_left) == (
        "queued",
        settings.job_timeout_s,
        2,
    )
    refused = store.create_job(
        "k", SPEC, chunks("k"), tenant="t", max_active=1,
        enqueue=stage_chunks(queue, chunks("k"), settings),
    )  # fmt: skip
    assert refused.verdict is Verdict.quota
    assert queue.job_ids == ["j-0-sample"]
    assert not rq.exists("rq:job:k-0-sample")


def test_a_plan_of_many_chunks_is_stored_whole(store: Store) -> None:
    """More chunks than one HSET of the script writes (500 at a time)."""
    register_model(store, "tiny")
    plan = [
        ChunkTask(job_id="big", chunk_id=i, slices=[ChunkSlice(prompt_index=0, start=i, count=1)])
        for i in range(1234)
    ]
    assert store.create_job("big", SPEC, plan, tenant="t").accepted
    assert store.chunk_plan("big") == plan


def test_a_rescore_of_a_source_archived_meanwhile_is_refused_and_writes_nothing(
    store: Store,
) -> None:
    register_model(store, "tiny")
    assert admit(store, "src") is Verdict.ok
    store.save_texts("src", 0, {0: "a", 1: "b", 2: "c", 3: "d"})
    store.r.hset(keys.job("src"), "archive", "/somewhere/src")  # archived after it was read
    refused = store.create_job("re", SPEC, chunks("re"), tenant="t", source_job="src")
    assert refused.verdict is Verdict.archived
    assert not store.r.exists(keys.job("re"), keys.job_texts("re", 0))
    # Restored from the archive by the caller: admitted without the copy.
    admitted = store.create_job(
        "re", SPEC, chunks("re"), tenant="t", source_job="src", copy_source=False
    )
    assert admitted.accepted
    assert store.get_job("re").source_job == "src"
    assert not store.r.exists(keys.job_texts("re", 0))
