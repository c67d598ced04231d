"""Cancelling a job (DELETE /v1/jobs/{id}), and purging its data with ``purge=true``.

Cancelling moves a queued or running job to ``cancelled`` (and queues its webhook), then takes
its queued chunks off the queues; a chunk already running finishes and its task, seeing the
status, stores nothing new, so what was drawn is kept and the results are marked partial.
Purging also deletes every RQ record and every key of the job.
"""

from __future__ import annotations

import redis

from shared.callbacks import set_status_and_notify
from shared.config import Settings
from shared.errors import Conflict
from shared.queues import drop_chunks
from shared.schemas import JobStatus, JobView
from shared.store import ACTIVE, JobRecord, Store


def purge_job(store: Store, rq: redis.Redis, job: JobRecord) -> None:
    """Cancel ``job`` if it is still active, drop its chunks and delete all its data."""
    store.set_status(job.id, JobStatus.cancelled, allowed_from=ACTIVE)
    drop_chunks(rq, job.id, [c.chunk_id for c in store.chunk_plan(job.id)], delete=True)
    store.delete_job(job.id)


def cancel_job(store: Store, rq: redis.Redis, settings: Settings, job: JobRecord) -> JobView:
    """Cancel ``job``; ``Conflict`` (naming ``id``) when it has already ended."""
    cancelled = set_status_and_notify(
        store, rq, settings, job.id, JobStatus.cancelled, allowed_from=ACTIVE
    )
    drop_chunks(rq, job.id, [c.chunk_id for c in store.chunk_plan(job.id)], delete=False)
    if cancelled is None:
        raise Conflict(
            f"job {job.id} is {job.status.value}; only queued or running jobs can be cancelled "
            "(use ?purge=true to delete its data)",
            param="id",
        )
    return store.get_job(job.id).view()
