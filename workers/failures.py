"""RQ failure callback shared by sampler and scorer chunks."""

from __future__ import annotations

import logging
from typing import Any

from rq.job import Job

from shared.callbacks import set_status_and_notify
from shared.queues import CHUNK_RETRIES
from shared.schemas import ErrorInfo, JobStatus
from shared.store import ACTIVE
from workers.runtime import runtime_of

log = logging.getLogger(__name__)


class ChunkDeferred(Exception):  # noqa: N818 - a deferral is not an error of the chunk
    """A chunk could not run for a reason outside the chunk (its engine is unreachable): it goes
    back on its queue without spending an attempt (``workers.supervision.ChunkWorker``).

    ``stop_worker`` says that this worker cannot serve any chunk until it is reconfigured (e.g.
    the endpoint refused its API key): the worker stops instead of taking the next chunk.
    """

    stop_worker: bool = False


def chunk_failed(job: Job, connection: Any, exc_type: type, exc: BaseException, tb: Any) -> None:
    """Fail the probeval job once a chunk has used up its retries.

    RQ calls this on every failed attempt; while retries are left the chunk is requeued and the
    job stays as it is. A ``ChunkDeferred`` is not an attempt at all.
    """
    if job.should_retry or issubclass(exc_type, ChunkDeferred):
        # A deferred chunk is re-queued as it was (ChunkWorker), whatever its attempts left.
        return
    payload = job.args[0] if job.args else {}
    job_id = payload.get("job_id") if isinstance(payload, dict) else None
    if not job_id:
        return
    attempts = CHUNK_RETRIES + 1
    detail = str(exc) or (
        "the worker running it stopped without finishing it (killed, or lost its connection)"
        if exc_type.__name__ == "AbandonedJobError"
        else "no message"
    )
    error = ErrorInfo(
        code="chunk_failed",
        message=(
            f"chunk {payload.get('chunk_id')} failed {attempts} times: "
            f"{exc_type.__name__}: {detail}"
        )[:2000],
        param=None,
    )
    rt = runtime_of(job)
    set_status_and_notify(
        rt.store, rt.rq, rt.settings, job_id, JobStatus.failed, allowed_from=ACTIVE, error=error
    )
    log.error("job %s failed: %s", job_id, error.message)
