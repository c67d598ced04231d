"""The chunk records of shared/rq_records.py are RQ's own: what the admission step writes from
the template is what ``Queue.enqueue_many`` writes, key for key and field for field (for the
installed RQ, whose record shape is pinned here), and real RQ workers (a forking ``rq.Worker``,
against the test redis-server) run them, retry them and call their failure callback as they do
RQ's."""

from __future__ import annotations

import json
import time
import zlib
from datetime import UTC, datetime
from typing import Any

import pytest
import redis
import rq
from rq import Queue, Worker
from rq.job import Job
from rq.serializers import JSONSerializer
from rq.utils import utcformat

from shared import keys, rq_records
from shared.config import Settings
from shared.planning import plan_chunks, plan_first_rounds
from shared.queues import JUDGE_TASK, SAMPLE_TASK, SCORE_TASK, rq_connection, stage_chunks
from shared.rq_records import (
    CHUNK_RETRIES,
    Command,
    StagedChunks,
    chunk_job,
    chunk_records,
    rq_stamp,
)
from shared.schemas import ChunkTask, JobCreate, JobStatus
from shared.store import Store
from tests.fixtures.pipeline import register_model
from workers import runtime

SETTINGS = Settings()
SPEC = JobCreate.model_validate(
    {
        "model": "tiny",
        "prompts": [
            {"id": "a", "prompt": "p", "reference": "r"},
            {"id": "b", "prompt": 'q \u00e9\u4e2d "quoted" \\ \n', "reference": "s"},
        ],
        "sampling": {"n": 300},
        "greedy": True,
    }
)
ADAPTIVE = JobCreate.model_validate(
    SPEC.model_dump()
    | {"stopping": {"target": "p_full", "threshold": 0.05, "min_n": 16, "max_n": 512}}
)
PLANS = {
    "fixed": plan_chunks("job1", SPEC, chunk_max_n=64, chunk_draws=128),
    "adaptive": plan_first_rounds("job2", ADAPTIVE, 16, chunk_max_n=64, chunk_draws=128),
}
# RQ 3.0.0's chunk record, field by field in the order it writes them (Job.to_dict). Another
# RQ version that writes another record fails here: check that the template still copies every
# field it adds (shared/rq_records.py) before changing this list.
RQ_RECORD_FIELDS = [
    "created_at",
    "data",
    "success_callback_name",
    "failure_callback_name",
    "stopped_callback_name",
    "started_at",
    "ended_at",
    "last_heartbeat",
    "worker_name",
    "group_id",
    "retries_left",
    "retry_intervals",
    "origin",
    "description",
    "enqueued_at",
    "timeout",
    "failure_callback_timeout",
    "result_ttl",
    "failure_ttl",
    "status",
]


def decoded(value: bytes) -> Any:
    """A job data field as a worker reads it (RQ's Job.restore, then JSONSerializer.loads)."""
    return JSONSerializer.loads(zlib.decompress(value))


def normalized(commands: list[Command] | tuple[Command, ...]) -> list[list[Any]]:
    """The commands with the job data decoded (as a worker reads it) and the timestamps blanked
    (RQ stamps created_at and enqueued_at separately, microseconds apart)."""
    out = []
    for args, options in commands:
        assert options == {}
        row = [getattr(a, "value", a) for a in args]
        for i, value in enumerate(row):
            if isinstance(value, bytes):
                row[i] = decoded(value)
            if value in ("created_at", "enqueued_at"):
                row[i + 1] = "<time>"
        out.append(row)
    return out


def rq_staged(queue: Queue, func: str, suffix: str, plan: list[ChunkTask]) -> list[Command]:
    pipe = queue.connection.pipeline(transaction=True)
    queue.enqueue_many(
        [
            chunk_job(
                func, c, suffix, timeout=SETTINGS.job_timeout_s, failure_ttl=SETTINGS.retention_s
            )
            for c in plan
        ],
        pipeline=pipe,
    )
    return list(pipe.command_stack)


def rq_keys(conn: redis.Redis) -> dict[bytes, Any]:
    """Every key RQ's enqueue writes (rq:*), with its TTL and its content: a hash with its job
    data decoded and its timestamps blanked, a list in order, a set as a set."""
    out: dict[bytes, Any] = {}
    for key in sorted(conn.scan_iter(match="rq:*")):
        kind = conn.type(key)
        if kind == b"hash":
            fields = conn.hgetall(key)
            if b"data" in fields:
                fields[b"data"] = decoded(fields[b"data"])
            for stamp in (b"created_at", b"enqueued_at"):
                if stamp in fields:
                    time.strptime(fields[stamp].decode(), "%Y-%m-%dT%H:%M:%S.%fZ")  # RQ's format
                    fields[stamp] = "<time>"
            content: Any = fields
        elif kind == b"list":
            content = conn.lrange(key, 0, -1)
        else:
            assert kind == b"set", (key, kind)
            content = conn.smembers(key)
        out[key] = (conn.ttl(key), content)
    return out


STAGES = [
    (SAMPLE_TASK, "sample", keys.sample_queue("tiny")),
    (JUDGE_TASK, "judge", keys.sample_queue("judge-model")),
    (SCORE_TASK, "score", keys.SCORE_QUEUE),
]


@pytest.mark.parametrize("form", ["template", "rq-commands"])
@pytest.mark.parametrize("plan", PLANS, ids=list(PLANS))
@pytest.mark.parametrize(("func", "suffix", "queue_name"), STAGES)
def test_the_admission_step_writes_what_rq_writes(
    redis_url: str, store: Store, form: str, plan: str, func: str, suffix: str, queue_name: str
) -> None:
    """The chunks enqueued by the admission step, from the template or (RQ of another shape)
    from RQ's own staged commands, leave Redis holding exactly what ``Queue.enqueue_many`` of
    the same chunks leaves, every rq:* key compared."""
    conn = rq_connection(redis_url)
    queue = Queue(queue_name, connection=conn, serializer=JSONSerializer)
    records = chunk_records(func, suffix, SETTINGS.job_timeout_s, SETTINGS.retention_s)
    assert records is not None
    chunks = PLANS[plan]
    assert len(chunks) >= 2
    if form == "template":
        staged = records.stage(queue_name, chunks)
        assert len(staged.args) == 3 + 3 * len(chunks)  # per chunk only its id, text and data
    else:
        staged = StagedChunks(commands=tuple(rq_staged(queue, func, suffix, chunks)))
    assert store.create_job(chunks[0].job_id, SPEC, chunks, tenant="t", enqueue=staged).accepted
    ours = rq_keys(conn)
    store.r.flushdb()
    pipe = conn.pipeline(transaction=True)
    queue.enqueue_many(
        [
            chunk_job(
                func, c, suffix, timeout=SETTINGS.job_timeout_s, failure_ttl=SETTINGS.retention_s
            )
            for c in chunks
        ],
        pipeline=pipe,
    )
    pipe.execute()
    theirs = rq_keys(conn)
    assert len(theirs) == 2 + len(chunks)  # rq:queues, the queue, a record per chunk
    assert ours == theirs


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2026, 12, 2, 6, 1, 2, 345678, tzinfo=UTC),
        datetime(2026, 1, 9, 0, 0, 0, 0, tzinfo=UTC),  # isoformat drops a zero microsecond
        datetime(1999, 12, 31, 23, 59, 59, 7, tzinfo=UTC),
    ],
)
def test_the_stamp_is_rqs(moment: datetime) -> None:
    assert rq_stamp(moment) == utcformat(moment)


def test_the_installed_rq_writes_the_pinned_record() -> None:
    records = chunk_records(SAMPLE_TASK, "sample", SETTINGS.job_timeout_s, SETTINGS.retention_s)
    assert records is not None, f"RQ {rq.__version__}: its commands changed shape"
    template = json.loads(records.template)
    fields = template["fields"]
    assert fields[0::2] == RQ_RECORD_FIELDS, f"RQ {rq.__version__} writes another record"
    values = dict(zip(fields[0::2], fields[1::2], strict=True))
    assert values["retries_left"] == str(CHUNK_RETRIES) and values["retry_intervals"] == "[0]"
    assert values["failure_callback_name"] == "workers.failures.chunk_failed"
    assert values["status"] == "queued" and template["status"] == ["status", "queued"]
    # The per-chunk slots, named by their 1-based (Lua) positions, are left empty.
    for name, at in template["at"].items():
        assert fields[at - 2] == name and fields[at - 1] == ""
    origin, _stamp, count, rq_id, description, data = records.stage("q", PLANS["fixed"][:1]).args
    assert (origin, count, rq_id) == ("q", 1, "job1-0-sample")
    assert description == "sample chunk 0 of job job1"
    assert decoded(data) == [SAMPLE_TASK, None, [PLANS["fixed"][0].model_dump(mode="json")], {}]


# Tasks the real worker runs below (by dotted path, as the gateway names worker tasks).
def echo_chunk(rt: runtime.Runtime, payload: dict[str, Any]) -> dict[str, Any]:
    task = ChunkTask.model_validate(payload)
    rt.store.r.rpush("test:echoed", task.model_dump_json())
    return {"chunk": task.chunk_id}


def failing_chunk(rt: runtime.Runtime, payload: dict[str, Any]) -> None:
    rt.store.r.rpush("test:attempts", str(payload["chunk_id"]))
    raise RuntimeError("this chunk always fails")


def admitted(store: Store, redis_url: str, job_id: str, func: str) -> list[ChunkTask]:
    """A job admitted with its chunks staged from the template, for ``func``."""
    register_model(store, "tiny")
    records = chunk_records(func, "sample", SETTINGS.job_timeout_s, SETTINGS.retention_s)
    assert records is not None
    plan = plan_chunks(job_id, SPEC, chunk_max_n=64, chunk_draws=128)
    enqueue = records.stage(keys.sample_queue("tiny"), plan)
    assert store.create_job(job_id, SPEC, plan, tenant="t", enqueue=enqueue).accepted
    return plan


def burst(redis_url: str) -> None:
    """A forking RQ worker (each chunk in its own work horse), burst mode, bound to a runtime."""
    rt = runtime.build(Settings(redis_url=redis_url), model="tiny")
    queue = Queue(keys.sample_queue("tiny"), connection=rt.rq, serializer=JSONSerializer)
    Worker(
        [queue],
        connection=rt.rq,
        serializer=JSONSerializer,
        job_class=runtime.RuntimeJob.bound_to(rt),
    ).work(burst=True)


def test_a_real_rq_worker_runs_the_template_chunks(
    redis_url: str, redis_client: redis.Redis, store: Store
) -> None:
    plan = admitted(store, redis_url, "echo", f"{__name__}.echo_chunk")
    burst(redis_url)
    echoed = [ChunkTask.model_validate_json(x) for x in redis_client.lrange("test:echoed", 0, -1)]
    assert echoed == plan
    conn = rq_connection(redis_url)
    for chunk in plan:
        job = Job.fetch(f"echo-{chunk.chunk_id}-sample", connection=conn, serializer=JSONSerializer)
        assert job.get_status() == "finished"
        assert job.return_value() == {"chunk": chunk.chunk_id}
        assert job.description == f"sample chunk {chunk.chunk_id} of job echo"


def test_a_failing_template_chunk_is_retried_then_fails_its_job(
    redis_url: str, redis_client: redis.Redis, store: Store
) -> None:
    """Retries and the failure callback come from the record's fields (retries_left,
    failure_callback_name): attempted 1 + CHUNK_RETRIES times, then the job is failed."""
    plan = admitted(store, redis_url, "doomed", f"{__name__}.failing_chunk")
    burst(redis_url)
    attempts = [int(x) for x in redis_client.lrange("test:attempts", 0, -1)]
    assert sorted(attempts) == sorted(c.chunk_id for c in plan for _ in range(1 + CHUNK_RETRIES))
    job = store.get_job("doomed")
    assert job.status is JobStatus.failed
    assert job.error is not None and "failed 3 times" in job.error.message


def test_stage_chunks_uses_the_template(redis_url: str) -> None:
    queue = Queue(keys.SCORE_QUEUE, connection=rq_connection(redis_url), serializer=JSONSerializer)
    staged = stage_chunks(queue, PLANS["fixed"], SETTINGS)
    records = chunk_records(SCORE_TASK, "score", SETTINGS.job_timeout_s, SETTINGS.retention_s)
    assert records is not None
    expected = records.stage(keys.SCORE_QUEUE, PLANS["fixed"])
    assert (staged.template, staged.commands) == (records.template, ())
    # All but the time stamp; the data as a worker reads it.
    assert [decoded(a) if isinstance(a, bytes) else a for a in staged.args[2:]] == [
        decoded(a) if isinstance(a, bytes) else a for a in expected.args[2:]
    ]


def test_another_record_shape_falls_back_to_rq_itself(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An RQ that stages an enqueue in other commands (pyproject allows rq>=2.0): the template
    refuses and stage_chunks stages with RQ itself, so the records stay RQ's either way."""
    monkeypatch.setattr(rq_records, "_prototype_commands", lambda *args: [(("SADD", "k", "v"), {})])
    chunk_records.cache_clear()
    try:
        assert (
            chunk_records(SCORE_TASK, "score", SETTINGS.job_timeout_s, SETTINGS.retention_s) is None
        )
        queue = Queue(
            keys.SCORE_QUEUE, connection=rq_connection(redis_url), serializer=JSONSerializer
        )
        staged = stage_chunks(queue, PLANS["fixed"], SETTINGS)
        assert (staged.template, staged.args) == ("", ())
        assert normalized(staged.commands) == normalized(
            rq_staged(queue, SCORE_TASK, "score", PLANS["fixed"])
        )
    finally:
        chunk_records.cache_clear()  # the next caller builds the real template again
