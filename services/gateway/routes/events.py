"""GET /v1/jobs/{id}/events: progress and status changes as Server-Sent Events (sse-starlette)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
from fastapi import APIRouter
from sse_starlette.sse import EventSourceResponse

from services.gateway.deps import StoreDep, TenantDep, WatcherDep
from services.gateway.errors import ERROR_RESPONSES_JSON
from shared.schemas import ErrorInfo, ErrorResponse, JobEvent

router = APIRouter(prefix="/v1/jobs", tags=["jobs"], responses=ERROR_RESPONSES_JSON)

# A comment line this often keeps proxies from closing a quiet stream.
PING_S = 15


@router.get(
    "/{job_id}/events",
    summary="Live progress: `progress` events (JobEvent) on every change, then one `end` event "
    "(the JobView) when the job has ended; the stream then closes",
    response_class=EventSourceResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
def get_events(
    job_id: str, store: StoreDep, tenant: TenantDep, watcher: WatcherDep
) -> EventSourceResponse:
    """Server-sent events: progress while the job runs, then its final view (or an error)."""
    store.get_job(job_id, tenant=tenant)  # 404 before the stream starts

    async def stream() -> AsyncIterator[dict[str, Any]]:
        async with watcher.subscribe(job_id) as queue:
            while True:
                snap = await queue.get()
                if snap.status is None:
                    gone = ErrorInfo(code="not_found", message=f"job {job_id} was deleted")
                    yield {"event": "error", "data": ErrorResponse(error=gone).model_dump_json()}
                    return
                if snap.status.terminal:
                    view = await anyio.to_thread.run_sync(lambda: store.get_job(job_id).view())
                    yield {"event": "end", "data": view.model_dump_json()}
                    return
                event = JobEvent(id=job_id, status=snap.status, progress=snap.progress)
                yield {"event": "progress", "data": event.model_dump_json()}

    return EventSourceResponse(stream(), ping=PING_S)
