"""RQ's records for a job's chunks, staged from a template that RQ itself wrote.

A submit stages what enqueues its chunks (``shared.queues.stage_chunks``), and
``Queue.enqueue_many`` building an ``rq.Job`` per chunk was a third of a submit's CPU (Job
construction, ``to_dict``, the serializer lookup). Every chunk record of one (task, suffix,
timeout, failure TTL) differs only in its id, its queue, its arguments, its description and its
timestamps, so ``ChunkRecords`` lets RQ stage one prototype chunk, once, and keeps RQ's commands
for it as a template: RQ's fields that are the same for every chunk, with the slots of those that
differ. A submit then sends the template once (one argument, the same string every time) and per
chunk only its id, description and data; the admission script (``shared.job_record.ADMIT_JOB``)
writes each chunk's commands from them, as RQ would. Sending the commands themselves, 53
arguments per chunk, made packing them the largest single cost of a submit. The record is
therefore RQ's own field for field (``tests/shared/test_rq_records.py`` compares what the script
writes in Redis with what ``Queue.enqueue_many`` writes, and has real RQ workers run it); a
prototype whose commands are not the shape this module knows makes ``ChunkRecords`` refuse
(``RecordShapeChanged``), and staging falls back to RQ's own commands, run as they are.
"""

from __future__ import annotations

import functools
import json
import logging
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any

import redis
from rq import Callback, Queue, Retry
from rq.job import Job
from rq.queue import EnqueueData
from rq.serializers import JSONSerializer

from shared import keys
from shared.schemas import ChunkSlice, ChunkTask

log = logging.getLogger(__name__)

# A staged Redis command: positional arguments and options, as redis-py pipelines hold them.
Command = tuple[tuple[Any, ...], dict[str, Any]]

FAILURE_CALLBACK = "workers.failures.chunk_failed"
# A chunk that raises is retried this often before its job is failed: enough for a transient
# error (a Redis blip), few enough that a chunk that can never succeed fails the job quickly.
CHUNK_RETRIES = 2

# The prototype's values, each unlike anything RQ writes by itself, so that they are found (and
# replaced) exactly where RQ put them.
_PROTO_QUEUE = "probeval-prototype-queue"
_PROTO_JOB = "probeval-prototype-job"
_PROTO_TASK = ChunkTask(
    job_id=_PROTO_JOB, chunk_id=0, slices=[ChunkSlice(prompt_index=0, start=0, count=1)]
)
# Fields of the record written per chunk; every other field is the prototype's value.
_PER_CHUNK = ("created_at", "enqueued_at", "data", "description", "origin")


def _plain(value: Any) -> Any:
    """RQ's status is a str enum: its value, as the Redis client writes it."""
    return value.value if isinstance(value, Enum) else value


def _as_written(value: Any) -> str:
    """A constant field's value as redis-py writes it (``Encoder.encode``: str as is, int and
    float as their repr), for the template, which the script passes on unchanged."""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return repr(value)
    raise RecordShapeChanged(f"RQ's job record holds {value!r}, not a str or a number")


def rq_stamp(moment: datetime) -> str:
    """RQ's timestamp of an aware UTC datetime (``rq.utils.utcformat``'s
    ``%Y-%m-%dT%H:%M:%S.%fZ``) from ``isoformat``: strftime was a tenth of staging a job's
    chunks."""
    return moment.isoformat(timespec="microseconds").removesuffix("+00:00") + "Z"


@dataclass(frozen=True)
class StagedChunks:
    """A job's chunk enqueue as the admission step takes it. From a template: ``template``
    (``ChunkRecords.template``) and ``args`` (the queue's name, the time stamp, the number of
    chunks, then per chunk its RQ id, description and job data). When RQ staged the chunks
    itself: its ``commands``, which the script runs as they are. Empty: nothing to enqueue."""

    template: str = ""
    args: tuple[Any, ...] = ()
    commands: tuple[Command, ...] = ()


class RecordShapeChanged(RuntimeError):
    """RQ stages an enqueue in commands this module does not know (another RQ version)."""


def describe(suffix: str, task: ChunkTask) -> str:
    """The RQ description of a chunk stage (``rq info``, the dashboard)."""
    return f"{suffix} chunk {task.chunk_id} of job {task.job_id}"


def chunk_job(
    func: str, task: ChunkTask, suffix: str, *, timeout: int, failure_ttl: int
) -> EnqueueData:
    """RQ's enqueue data of one chunk stage: the queue policy of every chunk."""
    return Queue.prepare_data(
        func,
        args=(task.model_dump(mode="json"),),
        timeout=timeout,
        result_ttl=600,
        failure_ttl=failure_ttl,
        job_id=keys.rq_chunk_id(task.job_id, task.chunk_id, suffix),
        # No retry interval: intervals need an RQ scheduler process, immediate requeue does not.
        retry=Retry(max=CHUNK_RETRIES),
        on_failure=Callback(FAILURE_CALLBACK),
        description=describe(suffix, task),
    )


def _prototype_commands(func: str, suffix: str, timeout: int, failure_ttl: int) -> list[Command]:
    # A client that never connects: staging into a pipeline does no I/O except RQ's read of the
    # server version, which only steers RQ's reads (never the commands of an enqueue), so it is
    # set here instead of read.
    queue = Queue(_PROTO_QUEUE, connection=redis.Redis(), serializer=JSONSerializer)
    queue.redis_server_version = (7, 0, 0)
    pipe = queue.connection.pipeline(transaction=True)
    proto = chunk_job(func, _PROTO_TASK, suffix, timeout=timeout, failure_ttl=failure_ttl)
    queue.enqueue_many([proto], pipeline=pipe)
    return list(pipe.command_stack)


class ChunkRecords:
    """The enqueue commands of chunks of one task (``func``) and stage ``suffix``, from RQ's
    commands for a prototype chunk. ``stage`` costs a zlib compression and a few list copies per
    chunk, no ``rq.Job``."""

    def __init__(self, func: str, suffix: str, *, timeout: int, failure_ttl: int) -> None:
        self.func = func
        self.suffix = suffix
        stack = _prototype_commands(func, suffix, timeout, failure_ttl)
        proto_id = keys.rq_chunk_id(_PROTO_JOB, 0, suffix)
        proto_key = Job.redis_job_namespace_prefix + proto_id
        proto_queue_key = Queue.redis_queue_namespace_prefix + _PROTO_QUEUE
        names = [str(args[0]).upper() for args, _ in stack]
        if names != ["SADD", "HSET", "HSET", "RPUSH"] or any(opts for _, opts in stack):
            raise RecordShapeChanged(f"RQ staged {names} for one job")
        sadd, status, record, push = (args for args, _ in stack)
        if (
            sadd != ("SADD", Queue.redis_queues_keys, proto_queue_key)
            or status[:2] != ("HSET", proto_key)
            or record[:2] != ("HSET", proto_key)
            or push != ("RPUSH", proto_queue_key, proto_id)
            or len(record) % 2
        ):
            raise RecordShapeChanged(f"RQ staged {stack!r} for one job")
        fields = [_plain(v) for v in record[2:]]
        names_at = {str(fields[i]): i + 1 for i in range(0, len(fields), 2)}
        missing = [f for f in _PER_CHUNK if f not in names_at]
        if missing:
            raise RecordShapeChanged(f"RQ's job record has no {missing}")
        # RQ's JSONSerializer: json.dumps of (func, instance, args, kwargs), UTF-8.
        expected_data = json.dumps(
            (func, None, (_PROTO_TASK.model_dump(mode="json"),), {})
        ).encode()
        if zlib.decompress(fields[names_at["data"]]) != expected_data:
            raise RecordShapeChanged("RQ's job data is not the JSON of (func, None, args, {})")
        per_chunk = {names_at[f] for f in _PER_CHUNK}
        for i, value in enumerate(fields):
            if i in per_chunk:
                continue
            if _PROTO_JOB in str(value) or _PROTO_QUEUE in str(value):
                raise RecordShapeChanged(
                    f"RQ's job record holds the job's id or queue in {value!r}"
                )
        # The script's template (shared.job_record.ADMIT_JOB): RQ's key prefixes, the status
        # command's fields, and the record's fields with '' in the per-chunk slots, whose
        # (1-based, Lua) positions it names.
        self.template = json.dumps(
            {
                "queues": Queue.redis_queues_keys,
                "queue_prefix": Queue.redis_queue_namespace_prefix,
                "job_prefix": Job.redis_job_namespace_prefix,
                "status": [_as_written(v) for v in status[2:]],
                "fields": [
                    "" if i in per_chunk else _as_written(value) for i, value in enumerate(fields)
                ],
                "at": {f: names_at[f] + 1 for f in _PER_CHUNK},
            }
        )
        # RQ's JSON of (func, None, (task,), {}) is json.dumps with its default separators; the
        # task's own JSON goes in the middle (pydantic's, equal once parsed: the test checks).
        self._data_head = b"[" + json.dumps(func).encode() + b", null, ["
        self._data_tail = b"], {}]"

    def stage(self, queue_name: str, tasks: Sequence[ChunkTask]) -> StagedChunks:
        """``Queue(queue_name).enqueue_many`` of the tasks, as the admission step writes it."""
        args: list[Any] = [queue_name, rq_stamp(datetime.now(UTC)), len(tasks)]
        for task in tasks:
            data = self._data_head + task.model_dump_json().encode() + self._data_tail
            args += [
                keys.rq_chunk_id(task.job_id, task.chunk_id, self.suffix),
                describe(self.suffix, task),
                zlib.compress(data),
            ]
        return StagedChunks(template=self.template, args=tuple(args))


@functools.lru_cache(maxsize=16)
def chunk_records(func: str, suffix: str, timeout: int, failure_ttl: int) -> ChunkRecords | None:
    """The template of one task and policy (a handful per process: the settings fix the
    policy), or None when RQ's commands have another shape (then stage with RQ itself)."""
    try:
        return ChunkRecords(func, suffix, timeout=timeout, failure_ttl=failure_ttl)
    except RecordShapeChanged as exc:
        log.warning("chunk records staged by RQ itself (slower): %s", exc)
        return None
