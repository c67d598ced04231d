"""Cancelling a job (DELETE /v1/jobs/{id}), and purging its data with ``purge=true``.

Cancelling moves a queued or running job to ``cancelled`` (and queues its webhook), then takes
its queued chunks off the queues; a chunk already running finishes and its task, seeing the
status, stores nothing new, so what was drawn is kept and the results are marked partial.
Purging also deletes every RQ record and every key of the job, and its archive.
"""

from __future__ import annotations

import redis

from shared import keys
from shared.archive_retention import purge_archive
from shared.callbacks import set_status_and_notify
from shared.config import Settings
from shared.errors import Conflict
from shared.queues import drop_archiving, drop_chunks
from shared.schemas import JobStatus, JobView
from shared.store import ACTIVE, JobRecord, Store


def purge_job(store: Store, rq: redis.Redis, settings: Settings, job: JobRecord) -> None:
    """Cancel ``job`` if it is still active, drop its chunks and its archiving task, and
    delete all its data: its archive first, then its Redis keys (a purge that fails half-way
    leaves the record, so it can be purged again)."""
    store.set_status(job.id, JobStatus.cancelled, allowed_from=ACTIVE)
    drop_chunks(rq, job.id, store.chunk_ids(job.id), delete=True)
    drop_archiving(rq, job.id)
    recorded = store.r.hget(keys.job(job.id), "archive")
    purge_archive(
        job.id,
        None if recorded is None else str(recorded),
        settings.archive_url,
        settings.archive_options,
    )
    store.delete_job(job.id)


def cancel_job(store: Store, rq: redis.Redis, settings: Settings, job: JobRecord) -> JobView:
    """Cancel ``job``; ``Conflict`` (naming ``id``) when it has already ended."""
    cancelled = set_status_and_notify(
        store, rq, settings, job.id, JobStatus.cancelled, allowed_from=ACTIVE
    )
    drop_chunks(rq, job.id, store.chunk_ids(job.id), delete=False)
    if cancelled is None:
        raise Conflict(
            f"job {job.id} is {job.status.value}; only queued or running jobs can be cancelled "
            "(use ?purge=true to delete its data)",
            param="id",
        )
    return store.get_job(job.id).view()
