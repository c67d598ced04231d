"""Taking a chunk off a queue so that a lost connection cannot lose it (docs/RELIABILITY.md).

RQ moves a job from its queue to the queue's *intermediate* list (``LMOVE``) when a worker
serves one queue, and its cleanup re-queues a job left there by a worker that died before
recording the start. A worker serving several queues gets ``BLPOP`` instead: the id leaves the
queue and is in no list or registry until the worker has fetched the job and recorded its
start, two more round trips. If Redis goes away in between (a restart) or the worker dies, the
chunk is gone and its probeval job never finishes. Seen: a scorer (score, webhook and archive
queues) lost a score chunk during a Redis restart mid-job; the job stayed ``running``.

``MovingQueue.dequeue_any`` takes from several queues the way RQ takes from one: ``LMOVE``
into each queue's intermediate list, in priority order, then waits with ``BLMOVE`` on one
queue (``wait_on``) for at most ``poll_s`` before looking at the others again. So an idle
worker looks at its other queues ``1 / poll_s`` times a second (one ``LMOVE`` each), and a job
on one of them starts at most ``poll_s`` late.

``recover_stuck`` replaces RQ's intermediate cleanup: a job found in an intermediate list
without a started execution for ``stuck_after_s`` (RQ waits a fixed minute; we use the
abandoned-chunk delay, so a chunk is back within the same bound whichever way its worker
died) gets what an abandoned running job gets from ``StartedJobRegistry.cleanup``: the failure
callback, then a retry while it has attempts left, else the failed registry (RQ's own cleanup
skips the callback, which would leave the probeval job ``running`` on a chunk's last attempt).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import timedelta
from typing import Any, ClassVar

from redis import Redis
from rq import Queue
from rq.callbacks import execute_failure_callback
from rq.exceptions import AbandonedJobError, DequeueTimeout, NoSuchJobError
from rq.intermediate_queue import IntermediateQueue
from rq.job import Job
from rq.timeouts import BaseDeathPenalty
from rq.utils import as_text, now
from rq.worker import BaseWorker

log = logging.getLogger(__name__)


class MovingQueue(Queue):
    """An RQ queue class whose ``dequeue_any`` always moves the job to an intermediate list."""

    wait_on: ClassVar[str | None] = None  # the queue name to block on; None: the first queue
    poll_s: ClassVar[float] = 0.2

    @classmethod
    def waiting_on(cls, name: str) -> type[MovingQueue]:
        """A subclass that blocks on the queue called ``name`` (the busiest one)."""
        return type(cls.__name__, (cls,), {"wait_on": name})

    @classmethod
    def dequeue_any(
        cls,
        queues: Iterable[Queue],
        timeout: int | None,
        connection: Redis,
        job_class: type[Job] | None = None,
        serializer: Any = None,
        death_penalty_class: type[BaseDeathPenalty] | None = None,
    ) -> tuple[Job, Queue] | None:
        ordered = list(queues)
        if len(ordered) == 1:  # RQ's own path already moves (BLMOVE)
            return super().dequeue_any(
                ordered, timeout, connection, job_class, serializer, death_penalty_class
            )
        waited = next((q for q in ordered if q.name == cls.wait_on), ordered[0])

        def taken(queue: Queue, job_id: bytes | str | None) -> tuple[Job, Queue] | None:
            """The job just moved off ``queue`` (None: none, or its record is gone; RQ's rule)."""
            if job_id is None:
                return None
            return cls._fetch_dequeued_job(
                connection, queue.key, as_text(job_id), job_class, serializer, death_penalty_class
            )

        left = None if timeout is None else float(timeout)
        while True:
            for queue in ordered:
                found = taken(queue, connection.lmove(queue.key, queue.intermediate_queue_key))
                if found is not None:
                    return found
            if left is None:
                return None
            if left <= 0:
                raise DequeueTimeout(timeout, [q.key for q in ordered])
            wait = min(left, cls.poll_s)
            left -= wait
            # Redis takes fractional seconds (>= 6.0); redis-py's annotation says int.
            moved = connection.blmove(waited.key, waited.intermediate_queue_key, wait)  # type: ignore[arg-type]
            found = taken(waited, moved)
            if found is not None:
                return found


def recover_stuck(
    worker: BaseWorker,
    queue: Queue,
    job_class: type[Job],
    stuck_after_s: float,
    death_penalty_class: type[BaseDeathPenalty],
) -> list[str]:
    """Re-queue (or fail) the jobs of ``queue``'s intermediate list that no worker has started
    for ``stuck_after_s``; returns their ids. A job is timed from the first time a cleaner saw
    it there unstarted (RQ's first-seen key, which ``ChunkWorker`` deletes when it starts the
    job, so a re-queued chunk is timed afresh)."""
    intermediate = IntermediateQueue(queue.key, connection=queue.connection)
    recovered = []
    for job_id in intermediate.get_job_ids():
        if job_id in queue.started_job_registry:
            continue
        try:  # as ``job_class``, so that the failure callback finds the worker's runtime
            job = job_class.fetch(job_id, connection=queue.connection, serializer=queue.serializer)
        except NoSuchJobError:  # the chunk's record is gone (expired or deleted): nothing to run
            intermediate.remove(job_id)
            continue
        if intermediate.set_first_seen(job_id):
            continue
        first_seen = intermediate.get_first_seen(job_id)
        if first_seen is None or now() - first_seen <= timedelta(seconds=stuck_after_s):
            continue
        log.warning("chunk %s was taken off %s but never started: re-queued", job_id, queue.name)
        try:
            execute_failure_callback(
                job, death_penalty_class, AbandonedJobError, AbandonedJobError(), None
            )
        except Exception:
            log.exception("failure callback of stuck chunk %s raised", job_id)
        worker.handle_job_failure(job, queue, exc_string="Job was stuck in intermediate queue.")
        intermediate.remove(job_id)
        queue.connection.delete(intermediate.get_first_seen_key(job_id))
        recovered.append(job_id)
    return recovered
