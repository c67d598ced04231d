"""A worker on several queues cannot lose a chunk to a lost connection (workers/dequeue.py).

Real Redis and RQ. The lost connection is played by making the fetch that follows the pop
raise, as it does when Redis stops between the two (the Redis-restart fault test lost a score
chunk that way, at random, under load).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from unittest import mock

import pytest
import redis
from rq import Callback, Queue, Retry, SimpleWorker
from rq.intermediate_queue import IntermediateQueue
from rq.job import Job
from rq.queue import DequeueTimeout
from rq.registry import FailedJobRegistry
from rq.serializers import JSONSerializer
from rq.utils import now

from shared.queues import rq_connection
from workers.dequeue import MovingQueue, recover_stuck
from workers.supervision import ChunkWorker, _NoDeathPenalty

FAILURES = "test:dequeue:failures"


def noop(tag: str) -> str:
    return tag


def record_failure(job: Job, connection: Any, exc_type: type, exc: BaseException, tb: Any) -> None:
    connection.rpush(FAILURES, f"{job.id}:{exc_type.__name__}")


@pytest.fixture()
def conn(redis_url: str) -> Iterator[redis.Redis]:
    c = rq_connection(redis_url)
    c.flushdb()
    yield c
    c.flushdb()


def queues(conn: redis.Redis) -> tuple[Queue, Queue]:
    return (
        Queue("first", connection=conn, serializer=JSONSerializer),
        Queue("second", connection=conn, serializer=JSONSerializer),
    )


def enqueue(queue: Queue, job_id: str, retries: int = 2) -> Job:
    return queue.enqueue(
        noop,
        job_id,
        job_id=job_id,
        retry=Retry(max=retries) if retries else None,
        on_failure=Callback(record_failure),
    )


def take(
    queue_class: type[Queue], conn: redis.Redis, qs: tuple[Queue, ...], timeout: int = 1
) -> Any:
    return queue_class.dequeue_any(qs, timeout, connection=conn, serializer=JSONSerializer)


def lists_holding(conn: redis.Redis, job_id: str) -> list[str]:
    found = []
    for key in conn.scan_iter("rq:queue:*"):
        if conn.type(key) == b"list" and job_id.encode() in conn.lrange(key, 0, -1):
            found.append(key.decode())
    return found


def pop_then_lose_connection(
    queue_class: type[Queue], conn: redis.Redis, qs: tuple[Queue, ...]
) -> None:
    """Take a job, with Redis going away right after the pop (the fetch that follows raises)."""
    lost = mock.patch.object(Job, "fetch", side_effect=redis.ConnectionError("Redis went away"))
    with lost, pytest.raises(redis.ConnectionError):
        take(queue_class, conn, qs)


def test_rq_loses_a_job_of_several_queues_when_the_connection_drops_after_the_pop(
    conn: redis.Redis,
) -> None:
    """The defect, on RQ's own dequeue: the id left its queue and is in no list any more."""
    first, second = queues(conn)
    enqueue(second, "lost")
    pop_then_lose_connection(Queue, conn, (first, second))
    assert lists_holding(conn, "lost") == []


def test_moving_queue_keeps_the_job_in_the_intermediate_list(conn: redis.Redis) -> None:
    first, second = queues(conn)
    enqueue(second, "kept")
    pop_then_lose_connection(MovingQueue, conn, (first, second))
    assert lists_holding(conn, "kept") == [second.intermediate_queue_key]


def age_first_seen(conn: redis.Redis, queue: Queue, job_id: str, seconds: float) -> None:
    key = IntermediateQueue(queue.key, conn).get_first_seen_key(job_id)
    conn.set(key, (now() - timedelta(seconds=seconds)).timestamp())


def test_a_stuck_job_is_retried_with_its_failure_callback(conn: redis.Redis) -> None:
    first, second = queues(conn)
    enqueue(second, "stuck")
    enqueue(second, "stuck-last", retries=0)
    for _ in range(2):
        pop_then_lose_connection(MovingQueue, conn, (first, second))
    worker = ChunkWorker(
        [first, second], connection=conn, serializer=JSONSerializer, abandon_after_s=5
    )

    def recover() -> list[str]:
        return recover_stuck(worker, second, Job, 5, _NoDeathPenalty)

    assert recover() == []  # first seen now: not stuck yet
    assert recover() == []  # seen, but not for 5 s
    assert conn.lrange(FAILURES, 0, -1) == []
    age_first_seen(conn, second, "stuck", 6)
    age_first_seen(conn, second, "stuck-last", 6)
    assert sorted(recover()) == ["stuck", "stuck-last"]
    # Both got the failure callback, as an abandoned running chunk does.
    assert sorted(conn.lrange(FAILURES, 0, -1)) == [
        b"stuck-last:AbandonedJobError",
        b"stuck:AbandonedJobError",
    ]
    # With attempts left: back on its queue, one attempt spent; without: failed.
    assert lists_holding(conn, "stuck") == [second.key]
    assert Job.fetch("stuck", connection=conn, serializer=JSONSerializer).retries_left == 1
    assert lists_holding(conn, "stuck-last") == []
    assert "stuck-last" in FailedJobRegistry(queue=second)


def test_a_started_job_is_not_stuck(conn: redis.Redis) -> None:
    """A job a worker took and started runs; its first-seen mark is cleared when it starts."""
    first, second = queues(conn)
    enqueue(second, "runs")
    worker = ChunkWorker(
        [first.name, second.name],
        connection=conn,
        serializer=JSONSerializer,
        queue_class=MovingQueue,
        abandon_after_s=5,
    )
    # A cleaner saw it taken but not yet started (the moment between the move and the start).
    conn.lmove(second.key, second.intermediate_queue_key)
    IntermediateQueue(second.key, conn).set_first_seen("runs")
    conn.rpush(second.key, conn.rpop(second.intermediate_queue_key))  # let the worker take it
    assert worker.work(burst=True)
    assert Job.fetch("runs", connection=conn, serializer=JSONSerializer).get_status() == "finished"
    assert lists_holding(conn, "runs") == []
    assert not conn.exists(IntermediateQueue(second.key, conn).get_first_seen_key("runs"))


def test_order_and_waiting(conn: redis.Redis) -> None:
    first, second = queues(conn)
    enqueue(second, "b")
    enqueue(first, "a")
    taken = [take(MovingQueue, conn, (first, second))[0].id for _ in range(2)]
    assert taken == ["a", "b"]  # priority order, whatever the order of arrival
    with pytest.raises(DequeueTimeout):
        take(MovingQueue, conn, (first, second), timeout=1)

    # Waiting on the first queue, a job arriving on the second is still taken before the
    # timeout (the other queues are looked at every poll_s).
    def later() -> None:
        time.sleep(0.5)
        enqueue(second, "late")

    pusher = threading.Thread(target=later)
    pusher.start()
    job, queue = take(MovingQueue.waiting_on("first"), conn, (first, second), timeout=10)
    pusher.join()
    assert (job.id, queue.name) == ("late", "second")


def test_a_simple_worker_on_one_queue_is_rq_s_own_path(conn: redis.Redis) -> None:
    first, _ = queues(conn)
    enqueue(first, "solo")
    assert SimpleWorker(
        [first.name], connection=conn, serializer=JSONSerializer, queue_class=MovingQueue
    ).work(burst=True)
    assert lists_holding(conn, "solo") == []
