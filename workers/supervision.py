"""Crash safety and reconnects for probeval's RQ workers (docs/RELIABILITY.md).

Both worker kinds run chunks in-process (``SimpleWorker``): the sampler must never fork once its
vLLM engine is loaded. RQ's forking ``Worker`` keeps a running job's StartedJobRegistry entry
fresh from the parent while the work-horse runs (``maintain_heartbeats``); ``SimpleWorker`` has no
parent to do that, so its entry would live for ``job_timeout + 60`` seconds and a chunk whose
worker was killed would sit unnoticed for that long. Here:

* ``ChunkWorker`` gives each execution a heartbeat TTL of ``abandon_after_s`` instead, and
* ``Watchdog`` (a daemon thread) calls RQ's own ``maintain_heartbeats`` for the running chunk
  every ``abandon_after_s / 4`` seconds, and as often runs RQ's ``StartedJobRegistry.cleanup``
  (plus the intermediate-queue cleanup) on every probeval queue. Cleanup treats an entry whose
  score has passed as abandoned: it calls the failure callback, then re-queues the chunk while it
  has retries left (the killed run counts as an attempt) or records it as failed, and
  ``workers.failures.chunk_failed`` then fails the probeval job with a stored error.
* ``serve`` restarts RQ's work loop with exponential back-off when it ends because Redis went
  away (RQ logs "unhandled exception, quitting" and returns), without reloading the engine.

A SIGTERM lets the running chunk finish (RQ's warm shutdown), then the worker exits; a second
SIGTERM or SIGINT interrupts the chunk, which RQ then re-queues as a failed attempt.

A chunk that raises ``ChunkDeferred`` (its engine is unreachable) is not an attempt:
``ChunkWorker`` gives the attempt back before RQ's retry re-queues the chunk, and (with an
``Availability``) takes no further chunk until the engine answers again; a deferral with
``stop_worker`` (the endpoint refused the worker's key) stops the worker instead.

A ``Halt`` is a stop decided inside the process (the sampler's engine died): the worker takes no
further chunk, ``serve`` does not restart the work loop, and the watchdog stops extending the
running chunk's heartbeat, so a chunk stuck in a dead engine is abandoned (and re-queued by any
other worker) even if nothing else frees it.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import redis
from rq import Queue, SimpleWorker
from rq.exceptions import StopRequested
from rq.intermediate_queue import IntermediateQueue
from rq.job import Job
from rq.registry import StartedJobRegistry
from rq.serializers import JSONSerializer
from rq.timeouts import BaseDeathPenalty

from shared import keys
from shared.queues import callback_queue, sample_queue, score_queue
from workers.availability import Availability
from workers.dequeue import MovingQueue, recover_stuck
from workers.failures import ChunkDeferred
from workers.runtime import Runtime, RuntimeJob

log = logging.getLogger(__name__)


class _NoDeathPenalty(BaseDeathPenalty):
    """Failure callbacks run from the watchdog thread, where RQ's SIGALRM timeout cannot work;
    ``chunk_failed`` is one short Redis write."""

    def setup_death_penalty(self) -> None:
        pass

    def cancel_death_penalty(self) -> None:
        pass


class Halt:
    """Why this process stops serving for good (set from any thread), and the ``ChunkWorker``
    that ``serve`` runs now (for whoever has to stop it)."""

    def __init__(self) -> None:
        self.reason: str | None = None
        self.worker: ChunkWorker | None = None

    def set(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason


class ChunkWorker(SimpleWorker):
    """A ``SimpleWorker`` whose running chunk is abandoned ``abandon_after_s`` after its last
    heartbeat (not ``job_timeout + 60`` s), which remembers a stop request, re-queues deferred
    chunks without spending an attempt, takes no chunk once its process is halted and, given an
    ``Availability``, waits for it before taking a chunk."""

    abandon_after_s: float = 60.0

    def __init__(
        self,
        *args: Any,
        abandon_after_s: float,
        availability: Availability | None = None,
        halt: Halt | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.abandon_after_s = abandon_after_s
        self.availability = availability
        self.halt = halt
        self.stop_requested = False
        self.fatal: str | None = None
        self._deferred: ChunkDeferred | None = None

    def get_heartbeat_ttl(self, job: Job, working_time: float = 0.0) -> int:
        return max(1, math.ceil(self.abandon_after_s))

    def dequeue_job_and_maintain_ttl(
        self, timeout: int | None, max_idle_time: int | None = None
    ) -> tuple[Job, Queue] | None:
        if self.halt is not None and self.halt.reason is not None:
            return None  # RQ's work loop ends as on an empty queue in burst mode
        if self.availability is not None and not self.availability.up:
            log.warning("engine unavailable (%s): waiting for it", self.availability.reason)
            # RQ's own worker record must stay alive while we wait (its TTL is worker_ttl).
            while not self.availability.wait_until_up(min(30.0, self.worker_ttl / 3)):
                self.heartbeat()
            log.info("engine available again: taking chunks")
        return super().dequeue_job_and_maintain_ttl(timeout, max_idle_time)

    def prepare_job_execution(self, job: Job, remove_from_intermediate_queue: bool = False) -> None:
        # MovingQueue moves every chunk to its queue's intermediate list, also when the worker
        # serves several queues (where RQ would not remove it). Forget when a cleaner first saw
        # it there, so that a later retry of the same chunk id is timed afresh.
        super().prepare_job_execution(job, remove_from_intermediate_queue=True)
        queue_key = Queue(job.origin, connection=self.connection).key
        first_seen = IntermediateQueue(queue_key, self.connection).get_first_seen_key(job.id)
        self.connection.delete(first_seen)

    def handle_exception(self, job: Job, *exc_info: Any) -> None:
        # Called after the failure callback and before handle_job_failure, with the exception.
        exc = exc_info[1] if len(exc_info) > 1 else None
        self._deferred = exc if isinstance(exc, ChunkDeferred) else None
        if self._deferred is None:
            super().handle_exception(job, *exc_info)

    def handle_job_failure(self, job: Job, queue: Queue, *args: Any, **kwargs: Any) -> None:
        deferred, self._deferred = self._deferred, None
        if deferred is not None:
            # Give the attempt back: RQ's retry below takes one and re-queues the chunk.
            job.retries_left = (job.retries_left or 0) + 1
            log.warning("chunk %s put back on its queue (no attempt spent): %s", job.id, deferred)
            if deferred.stop_worker:
                self.fatal = str(deferred)
                self._stop_requested = True
            elif self.availability is not None:
                self.availability.mark_down(str(deferred))
        super().handle_job_failure(job, queue, *args, **kwargs)

    def request_stop(self, signum: Any, frame: Any) -> None:
        self.stop_requested = True
        super().request_stop(signum, frame)  # type: ignore[no-untyped-call]  # RQ leaves it untyped


def probeval_queues(conn: redis.Redis, models: Sequence[str]) -> list[Queue]:
    """The callback and score queues and the sample queue of every model a sampler ever
    registered."""
    return [callback_queue(conn), score_queue(conn), *(sample_queue(conn, m) for m in models)]


def registered_models(conn: redis.Redis) -> list[str]:
    """The models a sampler has registered (``keys.MODELS``), sorted."""
    return sorted(m.decode() if isinstance(m, bytes) else str(m) for m in conn.hkeys(keys.MODELS))


def clean_abandoned(
    conn: redis.Redis,
    queues: Sequence[Queue],
    worker: ChunkWorker | None,
    lease_s: float,
    job_class: type[Job],
) -> None:
    """RQ's abandoned-job handling for ``queues``, one cleaner per queue at a time (RQ's
    maintenance-lock key, with a lease that expires if its holder dies). Jobs are built as
    ``job_class`` so that the failure callback finds the worker's runtime."""
    for queue in queues:
        if not conn.set(queue.registry_cleaning_key, 1, nx=True, ex=max(1, math.ceil(lease_s))):
            continue
        try:
            StartedJobRegistry(
                queue=queue, job_class=job_class, death_penalty_class=_NoDeathPenalty
            ).cleanup()
            if worker is not None:
                recover_stuck(worker, queue, job_class, worker.abandon_after_s, _NoDeathPenalty)
        finally:
            conn.delete(queue.registry_cleaning_key)


class Watchdog(threading.Thread):
    """Heartbeats the running chunk and cleans abandoned chunks of every probeval queue."""

    def __init__(self, rt: Runtime, halt: Halt | None = None) -> None:
        super().__init__(name="probeval-watchdog", daemon=True)
        self.conn = rt.rq
        self.job_class = RuntimeJob.bound_to(rt)
        self.interval_s = rt.settings.abandon_after_s / 4
        self.worker: ChunkWorker | None = None
        self.halt = halt
        self.stopped = threading.Event()

    def tick(self) -> None:
        worker = self.worker
        if worker is not None and (self.halt is None or self.halt.reason is None):
            for execution in list(worker.executions.values()):
                worker.maintain_heartbeats(execution.job, execution)
        queues = probeval_queues(self.conn, registered_models(self.conn))
        clean_abandoned(self.conn, queues, worker, self.interval_s, self.job_class)

    def run(self) -> None:
        while not self.stopped.wait(self.interval_s):
            try:
                self.tick()
            except Exception as exc:  # Redis down: keep trying; nothing here may kill the thread
                log.warning("watchdog tick failed: %s", exc)

    def stop(self) -> None:
        self.stopped.set()


def serve(
    make_worker: Callable[[str], ChunkWorker],
    name: str,
    rt: Runtime,
    *,
    burst: bool = False,
    with_scheduler: bool = False,
    halt: Halt | None = None,
) -> str | None:
    """Run RQ's work loop until a stop request, a ``halt`` (or, with ``burst``, an empty
    queue); restart it with back-off (1 s doubling to ``reconnect_max_s``) when it ends for any
    other reason.

    Returns why the worker stopped itself (``halt.reason`` or ``ChunkWorker.fatal``), or
    ``None``."""
    settings = rt.settings
    watchdog = Watchdog(rt, halt)
    watchdog.start()
    delay = 1.0
    restarts = 0
    try:
        while halt is None or halt.reason is None:
            started = time.monotonic()
            worker: ChunkWorker | None = None
            try:
                # A fresh name per restart: RQ refuses a name whose record is still alive.
                worker = make_worker(name if restarts == 0 else f"{name}.{restarts}")
                watchdog.worker = worker
                if halt is not None:
                    halt.worker = worker
                    if halt.reason is not None:  # halted while the worker was being made
                        return halt.reason
                worker.work(burst=burst, logging_level="WARNING", with_scheduler=with_scheduler)
            except StopRequested:
                if halt is not None and halt.reason is not None:
                    return halt.reason
                return worker.fatal if worker is not None else None
            except (redis.RedisError, OSError) as exc:
                log.warning("worker loop: Redis unavailable: %s", exc)
            finally:
                watchdog.worker = None
                if halt is not None:
                    halt.worker = None
            if halt is not None and halt.reason is not None:
                return halt.reason
            if worker is not None and worker.fatal:
                return worker.fatal
            if burst or (worker is not None and worker.stop_requested):
                return None
            if time.monotonic() - started > 60:
                delay = 1.0
            restarts += 1
            log.warning("worker loop ended; restarting in %.1f s (restart %d)", delay, restarts)
            try:
                time.sleep(delay)
            except StopRequested:  # SIGTERM during the back-off: RQ's handler is still installed
                return None
            delay = min(delay * 2, settings.reconnect_max_s)
        return halt.reason if halt is not None else None
    finally:
        watchdog.stop()


def chunk_worker(
    queues: Sequence[Queue],
    rt: Runtime,
    *,
    availability: Availability | None = None,
    halt: Halt | None = None,
    wait_on: Queue | None = None,
) -> Callable[[str], ChunkWorker]:
    """A factory of ``ChunkWorker``s on ``queues`` running their chunks with ``rt`` (``serve``
    makes a new one per restart). An idle worker blocks on ``wait_on`` (default: the first
    queue) and looks at the others every ``MovingQueue.poll_s``."""
    job_class = RuntimeJob.bound_to(rt)
    queue_class = MovingQueue.waiting_on((wait_on or queues[0]).name)

    def make(name: str) -> ChunkWorker:
        return ChunkWorker(
            [q.name for q in queues],  # RQ builds them as ``queue_class``
            connection=rt.rq,
            serializer=JSONSerializer,
            job_class=job_class,
            queue_class=queue_class,
            name=name,
            abandon_after_s=rt.settings.abandon_after_s,
            availability=availability,
            halt=halt,
        )

    return make
