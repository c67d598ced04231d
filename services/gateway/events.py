"""Live progress for GET /v1/jobs/{id}/events: one shared watcher per gateway process.

Clients never poll Redis themselves. While at least one stream is open, a single asyncio task
reads the progress fields of every watched job in ONE pipelined round trip per ``interval_s``
and hands each change to that job's subscribers; with no stream open it stops. So Redis sees at
most 1 / ``interval_s`` round trips per gateway process, however many clients watch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

import anyio

from shared import keys
from shared.schemas import JobStatus, Progress
from shared.store import Store

log = logging.getLogger(__name__)

_FIELDS = ("status", "samples_done", "samples_total")


@dataclass(frozen=True)
class Snapshot:
    """A watched job's state; None status when the job was deleted."""

    status: JobStatus | None
    progress: Progress


def _snapshot(values: list[str | None]) -> Snapshot:
    status, done, total = values
    return Snapshot(
        status=JobStatus(status) if status else None,
        progress=Progress(samples_done=int(done or 0), samples_total=int(total or 0)),
    )


class JobWatcher:
    """The gateway's one reader of watched jobs' progress (see the module docstring)."""

    def __init__(self, store: Store, *, interval_s: float = 0.5) -> None:
        self.store = store
        self.interval_s = interval_s
        self._subscribers: dict[str, set[asyncio.Queue[Snapshot]]] = {}
        self._last: dict[str, Snapshot] = {}
        self._task: asyncio.Task[None] | None = None

    def _read(self, job_ids: list[str]) -> list[Snapshot]:
        pipe = self.store.r.pipeline(transaction=False)
        for job_id in job_ids:
            pipe.hmget(keys.job(job_id), list(_FIELDS))
        return [_snapshot(v) for v in pipe.execute()]

    async def _run(self) -> None:
        while self._subscribers:
            job_ids = list(self._subscribers)
            try:
                snapshots = await anyio.to_thread.run_sync(self._read, job_ids)
            except Exception as exc:  # Redis away: streams stay open and resume after it
                log.warning("event watcher: reading jobs failed: %s", exc)
                snapshots = []
            for job_id, snap in zip(job_ids, snapshots, strict=False):
                if self._last.get(job_id) == snap:
                    continue
                self._last[job_id] = snap
                for queue in self._subscribers.get(job_id, ()):
                    queue.put_nowait(snap)
            await asyncio.sleep(self.interval_s)
        self._task = None

    @contextlib.asynccontextmanager
    async def subscribe(self, job_id: str) -> AsyncIterator[asyncio.Queue[Snapshot]]:
        """A queue that receives the job's snapshot at once and then each change."""
        queue: asyncio.Queue[Snapshot] = asyncio.Queue()
        first = job_id not in self._subscribers
        self._subscribers.setdefault(job_id, set()).add(queue)
        if not first and job_id in self._last:
            queue.put_nowait(self._last[job_id])
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())
        try:
            yield queue
        finally:
            subs = self._subscribers.get(job_id)
            if subs is not None:
                subs.discard(queue)
                if not subs:
                    del self._subscribers[job_id]
                    self._last.pop(job_id, None)
