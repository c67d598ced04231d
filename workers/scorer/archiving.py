"""The archiving task (queue ``probeval-archive``, served by scorer workers): move one finished
job's draws and results to its Parquet archive, then delete them from Redis (the steps and
their crash safety: shared/archive.py). Idempotent: a re-run after a crash at any step ends with
exactly one complete archive and no draw keys in Redis.
"""

from __future__ import annotations

import logging
from typing import Any

from shared import keys
from shared.archive import (
    ArchiveMismatch,
    delete_draw_keys,
    record_archive,
    write_archive,
)
from shared.archive_retention import maybe_sweep, purge_archive
from shared.errors import NotFound
from shared.queues import chunks_in_flight
from shared.results import build_results
from shared.schemas import JobResults, JobStatus
from shared.store import ACTIVE, JobRecord, Store
from workers.runtime import Runtime

log = logging.getLogger(__name__)


class ArchiveNotReady(Exception):
    """Chunks of the ended job are still queued or running; RQ runs the task again later."""


def results_to_archive(store: Store, job: JobRecord) -> JobResults | None:
    """What GET /v1/jobs/{id}/results answers for the job: the stored results once it has
    succeeded, the partial ones of a cancelled job (computed now, from every stored score;
    its draws no longer change), none for a failed job."""
    if job.status == JobStatus.succeeded:
        return store.results(job.id)
    if job.status == JobStatus.cancelled:
        return build_results(store, job, status=JobStatus.cancelled)
    return None


def archive_job(rt: Runtime, job_id: str) -> dict[str, Any]:
    """Archive the ended job ``job_id`` (see the module docstring); what it did, for RQ."""
    store, settings = rt.store, rt.settings
    try:
        job = store.get_job(job_id)
    except NotFound:
        return {"skipped": "job deleted"}
    if job.status in ACTIVE:
        return {"skipped": f"job is {job.status.value}"}
    if job.archive is not None:
        # Recorded by an earlier run that died before (or while) deleting the Redis copy.
        return {"archived": job.archive, "deleted_keys": delete_draw_keys(store, job)}
    # A cancelled or failed job's running chunks finish after its status changed; their
    # writes must land before the copy is taken.
    waiting = chunks_in_flight(rt.rq, job_id, store.chunk_ids(job_id))
    if waiting:
        raise ArchiveNotReady(f"{waiting} chunk stages of job {job_id} are still queued or running")
    location, manifest = write_archive(
        store, job, results_to_archive(store, job), settings.archive_url, settings.archive_options
    )
    raw = store.r.hget(keys.job(job_id), "samples_generated")
    generated = None if raw is None else int(raw)
    if generated is not None and generated != manifest.draws:
        raise ArchiveMismatch(
            f"job {job_id}: the record counts {generated} draws, the archive holds "
            f"{manifest.draws}; the draws stay in Redis"
        )
    state = record_archive(store, job_id, location, manifest)
    if state < 0:  # purged or expired while it was written: leave nothing behind
        purge_archive(job_id, None, settings.archive_url, settings.archive_options)
        return {"skipped": "job deleted while archiving"}
    deleted = delete_draw_keys(store, store.get_job(job_id))
    maybe_sweep(
        store.r, settings.archive_url, settings.archive_options, every_s=settings.archive_sweep_s
    )
    log.info("archived job %s: %d draws to %s", job_id, manifest.draws, location)
    return {"archived": location, "draws": manifest.draws, "deleted_keys": deleted}
