"""Retention of archives: each archive expires when its job's Redis record does (the job's
creation + ``retention_s``, written in its manifest), and a sweep deletes the expired ones;
``purge`` deletes a job's archive with its Redis keys.

The sweep decides from the manifests alone, never from Redis records being absent: a Redis that
lost its data (no AOF, a new instance) must not cause every archive to be deleted. A folder
without a manifest is an archive that a crash left unfinished: removed once its job has no
record any more (no attempt can then finish it).
"""

from __future__ import annotations

import logging
import posixpath
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import redis

from shared import keys
from shared.archive_files import MANIFEST, Manifest, filesystem, job_folder

log = logging.getLogger(__name__)


def remove_archive(location: str, options: Mapping[str, Any]) -> bool:
    """Delete one job's archive folder; True if there was one."""
    fs, folder = filesystem(location, options)
    if not fs.exists(folder):
        return False
    fs.rm(folder, recursive=True)
    return True


def purge_archive(
    job_id: str, recorded: str | None, base_url: str, options: Mapping[str, Any]
) -> int:
    """Delete the job's archive: the recorded folder and, for an archive being written while
    the job is purged, the folder it would get under ``base_url``."""
    folders = {recorded, job_folder(base_url, job_id)} - {None}
    return sum(remove_archive(str(f), options) for f in folders)


@dataclass(frozen=True)
class SweepOutcome:
    """What one sweep found and deleted."""

    checked: int
    expired: int
    unfinished: int


def sweep_expired(
    r: redis.Redis, base_url: str, options: Mapping[str, Any], *, now: float | None = None
) -> SweepOutcome:
    """Delete every archive under ``base_url`` past its expiry, and unfinished folders whose
    job record is gone."""
    now = time.time() if now is None else now
    fs, base = filesystem(base_url, options)
    if not fs.exists(base):
        return SweepOutcome(0, 0, 0)
    checked = expired = unfinished = 0
    for entry in fs.ls(base, detail=True):
        if entry.get("type") != "directory":
            continue
        folder = str(entry["name"]).rstrip("/")
        job_id = posixpath.basename(folder)
        checked += 1
        manifest_path = posixpath.join(folder, MANIFEST)
        if fs.exists(manifest_path):
            with fs.open(manifest_path, "rb") as f:
                manifest = Manifest.from_json(f.read())
            if manifest.expires_at <= now:
                fs.rm(folder, recursive=True)
                expired += 1
        elif not r.exists(keys.job(job_id)):
            fs.rm(folder, recursive=True)
            unfinished += 1
    if expired or unfinished:
        log.info("archive sweep: %d expired, %d unfinished removed", expired, unfinished)
    return SweepOutcome(checked, expired, unfinished)


def maybe_sweep(
    r: redis.Redis, base_url: str, options: Mapping[str, Any], *, every_s: float
) -> SweepOutcome | None:
    """Sweep unless another worker did within ``every_s`` (a lease in Redis)."""
    if not r.set(keys.ARCHIVE_SWEEP_LEASE, "1", nx=True, ex=max(1, int(every_s))):
        return None
    return sweep_expired(r, base_url, options)
