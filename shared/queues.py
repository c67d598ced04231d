"""Enqueueing chunks on RQ. Queue policy (timeouts, retries, TTLs) is set here, where jobs are
enqueued, and tasks are named by dotted path so the gateway never imports worker code.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import redis
from rq import Queue, Retry
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job
from rq.job import JobStatus as RqStatus
from rq.queue import EnqueueData
from rq.serializers import JSONSerializer

from shared import keys
from shared.config import Settings
from shared.rq_records import (
    CHUNK_RETRIES,
    FAILURE_CALLBACK,
    Command,
    StagedChunks,
    chunk_job,
    chunk_records,
)
from shared.schemas import ChunkTask

__all__ = ["CHUNK_RETRIES", "FAILURE_CALLBACK", "Command", "StagedChunks", "stage_chunks"]

SAMPLE_TASK = "workers.sampler.tasks.sample_chunk"
SCORE_TASK = "workers.scorer.tasks.score_chunk"
JUDGE_TASK = "workers.sampler.judging.judge_chunk"
DELIVER_TASK = "workers.callbacks.deliver_callback"
ARCHIVE_TASK = "workers.scorer.archiving.archive_job"
# Waits between attempts of an archiving task that raised (the store unreachable, or a cancelled
# job's last chunks still running): about a day in all, then it fails and the draws stay in Redis.
ARCHIVE_RETRY_INTERVALS = [10, 30, 60, 120, 300, 600, 1800, 3600, 3600, 3600, 7200, 7200]

# Expiry of a cancelled chunk's RQ record enqueued without a failure_ttl (none are, today).
RETENTION_FALLBACK_S = 7 * 24 * 3600


def rq_connection(url: str) -> redis.Redis:
    """RQ reads and writes bytes, so it gets a client without response decoding."""
    return redis.Redis.from_url(url, health_check_interval=30)


def sample_queue(conn: redis.Redis, model: str) -> Queue:
    """The RQ queue a model's samplers take chunks from."""
    return Queue(keys.sample_queue(model), connection=conn, serializer=JSONSerializer)


def score_queue(conn: redis.Redis) -> Queue:
    """The RQ queue of sampled chunks waiting for the scorers."""
    return Queue(keys.SCORE_QUEUE, connection=conn, serializer=JSONSerializer)


def callback_queue(conn: redis.Redis) -> Queue:
    """The RQ queue of webhook deliveries (served by the scorer)."""
    return Queue(keys.CALLBACK_QUEUE, connection=conn, serializer=JSONSerializer)


def archive_queue(conn: redis.Redis) -> Queue:
    """The queue of archiving tasks (served by scorers, after their scoring chunks)."""
    return Queue(keys.ARCHIVE_QUEUE, connection=conn, serializer=JSONSerializer)


def enqueue_archive(
    conn: redis.Redis, job_id: str, settings: Settings, *, delay_s: float | None = None
) -> None:
    """Queue the move of the job's draws to the archive, ``archive_after_s`` from now (RQ's
    scheduler, run by scorer workers, releases it). One RQ id per job: queueing twice replaces
    the pending task. Its record outlives no other key of the job (``ttl``)."""
    delay = settings.archive_after_s if delay_s is None else delay_s
    options: dict[str, Any] = {
        "args": (job_id,),
        "timeout": settings.job_timeout_s,
        "result_ttl": 600,
        "ttl": int(settings.retention_s + delay) + 1,
        "failure_ttl": settings.retention_s,
        "job_id": keys.rq_archive_id(job_id),
        "retry": Retry(max=len(ARCHIVE_RETRY_INTERVALS), interval=ARCHIVE_RETRY_INTERVALS),
        "description": f"archive of job {job_id}",
    }
    queue = archive_queue(conn)
    if delay > 0:
        queue.enqueue_in(timedelta(seconds=delay), ARCHIVE_TASK, **options)
    else:
        queue.enqueue_call(ARCHIVE_TASK, **options)


def drop_archiving(conn: redis.Redis, job_id: str) -> bool:
    """Delete the job's archiving task (queued, scheduled or done); True if there was one."""
    try:
        Job.fetch(keys.rq_archive_id(job_id), connection=conn, serializer=JSONSerializer).delete()
    except NoSuchJobError:
        return False
    return True


def chunks_in_flight(conn: redis.Redis, job_id: str, chunk_ids: list[int]) -> int:
    """How many stages of the job's chunks are still queued, running or waiting in RQ."""
    waiting = (RqStatus.QUEUED, RqStatus.STARTED, RqStatus.SCHEDULED, RqStatus.DEFERRED)
    rq_ids = chunk_job_ids(job_id, chunk_ids)
    jobs = Job.fetch_many(rq_ids, connection=conn, serializer=JSONSerializer)
    return sum(1 for job in jobs if job is not None and job.get_status() in waiting)


def callback_retry_intervals(settings: Settings) -> list[int]:
    """Waits between webhook attempts: ``callback_backoff_s`` doubling (at most 10 minutes),
    until they add up to ``callback_retry_window_s``. RQ counts whole seconds."""
    waits: list[int] = []
    wait = settings.callback_backoff_s
    while sum(waits) < settings.callback_retry_window_s:
        waits.append(max(1, round(min(wait, 600.0))))
        wait *= 2
    return waits


def enqueue_callback(conn: redis.Redis, job_id: str, settings: Settings) -> None:
    """Queue the job's webhook delivery. One RQ id per job: enqueueing twice replaces the
    pending delivery, it never adds a second one. Retries wait (RQ's scheduler, which scorer
    workers run), so a receiver that is down for a while still gets the delivery."""
    waits = callback_retry_intervals(settings)
    callback_queue(conn).enqueue_call(
        DELIVER_TASK,
        args=(job_id,),
        timeout=max(30, int(settings.callback_timeout_s * 3)),
        result_ttl=600,
        failure_ttl=settings.retention_s,
        job_id=keys.rq_callback_id(job_id),
        retry=Retry(max=len(waits), interval=waits),
        description=f"webhook of job {job_id}",
    )


def _chunk_job(func: str, task: ChunkTask, settings: Settings, suffix: str) -> EnqueueData:
    return chunk_job(
        func, task, suffix, timeout=settings.job_timeout_s, failure_ttl=settings.retention_s
    )


def _enqueue(queue: Queue, func: str, task: ChunkTask, settings: Settings, suffix: str) -> None:
    queue.enqueue_many([_chunk_job(func, task, settings, suffix)])


def stage_chunks(
    queue: Queue, chunks: Sequence[ChunkTask], settings: Settings, *, judging: bool = False
) -> StagedChunks:
    """What enqueues every chunk on ``queue`` (a ``sample_queue``, or ``score_queue`` for a
    rescore, whose draws exist already) inside the step that admits the job
    (``shared.job_record.ADMIT_JOB``), on whichever client the caller holds: the template of
    ``shared.rq_records`` and each chunk's values, from which the script writes exactly what
    ``Queue.enqueue_many`` writes, or, were RQ's records of another shape, RQ's own commands
    (``Queue.enqueue_many`` into a pipeline that is never executed here; RQ then reads the
    server's version once per connection, and caches it there). With ``judging``, ``queue`` is a
    judge model's sample queue and the chunks are judge stages (a rescore with the judge
    scorer)."""
    func, suffix = (
        (SCORE_TASK, "score") if queue.name == keys.SCORE_QUEUE else (SAMPLE_TASK, "sample")
    )
    if judging:
        func, suffix = JUDGE_TASK, "judge"
    records = chunk_records(func, suffix, settings.job_timeout_s, settings.retention_s)
    if records is not None:
        return records.stage(queue.name, chunks)
    pipe = queue.connection.pipeline(transaction=True)
    queue.enqueue_many([_chunk_job(func, c, settings, suffix) for c in chunks], pipeline=pipe)
    return StagedChunks(commands=tuple(pipe.command_stack))


def enqueue_sampling(conn: redis.Redis, model: str, task: ChunkTask, settings: Settings) -> None:
    """A chunk to its model's samplers, with the sample stage's RQ id, timeout and retries."""
    _enqueue(sample_queue(conn, model), SAMPLE_TASK, task, settings, "sample")


def enqueue_judging(
    conn: redis.Redis, judge_model: str, task: ChunkTask, settings: Settings
) -> None:
    """A chunk's draws to the judge model's samplers (its sample queue)."""
    _enqueue(sample_queue(conn, judge_model), JUDGE_TASK, task, settings, "judge")


def enqueue_scoring(conn: redis.Redis, task: ChunkTask, settings: Settings) -> None:
    """A sampled chunk to the scorers, with the score stage's RQ id, timeout and retries."""
    _enqueue(score_queue(conn), SCORE_TASK, task, settings, "score")


def chunk_job_ids(job_id: str, chunk_ids: list[int]) -> list[str]:
    """The RQ ids of every stage of the given chunks (see ``_enqueue``)."""
    return [keys.rq_chunk_id(job_id, c, stage) for c in chunk_ids for stage in keys.CHUNK_STAGES]


def drop_chunks(conn: redis.Redis, job_id: str, chunk_ids: list[int], *, delete: bool) -> int:
    """Take a job's chunks out of the queues: cancel the queued ones (so queue depth, and the
    autoscaler reading it, forget them) or, with ``delete``, delete every RQ record.
    A chunk already running finishes; its task sees the job's status and stores nothing new.
    Returns how many RQ jobs were dropped."""
    dropped = 0
    rq_ids = chunk_job_ids(job_id, chunk_ids)
    for job in Job.fetch_many(rq_ids, connection=conn, serializer=JSONSerializer):
        if job is None:
            continue
        try:
            if delete:
                job.delete()
                dropped += 1
            elif job.get_status() in (RqStatus.QUEUED, RqStatus.SCHEDULED, RqStatus.DEFERRED):
                job.cancel()
                # RQ keeps a cancelled job's record without a TTL: give it the retention the
                # chunk was enqueued with (its failure_ttl), like every other key of the job.
                conn.expire(job.key, job.failure_ttl or RETENTION_FALLBACK_S)
                dropped += 1
        except (InvalidJobOperation, NoSuchJobError):
            continue
        except ValueError:
            # A worker took the chunk between the status read and cancel() (RQ then finds no
            # execution record yet): it runs, and its task sees the job's new status.
            continue
    return dropped
