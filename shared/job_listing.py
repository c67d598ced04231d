"""GET /v1/jobs: a tenant's jobs, newest first, from the tenant's index (``keys.tenant_jobs``).

The cursor is the id of the last job of the previous page. A page starts right after that
job's rank in the index, read at request time, so jobs created meanwhile (they are newer, at
the front) never shift or repeat the later pages. Filters are applied while walking the index
in batches; records that expired are dropped from the index on the way.
"""

from __future__ import annotations

from shared import keys
from shared.errors import NotFound
from shared.job_record import VIEW_FIELDS, view_from_fields
from shared.schemas import JobCreate, JobList, JobListItem, JobStatus
from shared.store import Store


def _item(store: Store, job_id: str, values: list[str | None]) -> JobListItem:
    """The job's view (built as GET /v1/jobs/{id} builds it) plus its prompt count."""
    raw = dict(zip(VIEW_FIELDS, values, strict=True))
    spec = None
    if raw["model"] is None or raw["prompts"] is None:
        # A record written before the listing fields existed: read them from the spec.
        spec = JobCreate.model_validate_json(str(store.r.hget(keys.job(job_id), "spec")))
    view = view_from_fields(job_id, values, tenant=None, spec=spec)
    prompts = len(spec.prompts) if spec is not None else int(raw["prompts"] or 0)
    return JobListItem.model_validate({**view.model_dump(), "prompts": prompts})


def list_jobs(
    store: Store,
    tenant: str,
    *,
    limit: int,
    after: str | None = None,
    status: JobStatus | None = None,
    model: str | None = None,
) -> JobList:
    """One page of the tenant's jobs, newest first, that match ``status`` and ``model``."""
    index = keys.tenant_jobs(tenant)
    start = 0
    if after is not None:
        rank = store.r.zrevrank(index, after)
        if not isinstance(rank, int):
            # A well-formed id (the route checks the format) that names no job of the caller:
            # not found, as GET /v1/jobs/{id} says for it (another tenant's job included).
            raise NotFound(
                f"after: no job {after!r} of this caller (pass the next_after of the previous "
                "page; a job that was deleted or expired ends a walk)",
                param="after",
            )
        start = rank + 1
    batch = max(2 * limit, 100)
    found: list[JobListItem] = []
    while len(found) <= limit:
        ids = [str(i) for i in store.r.zrevrange(index, start, start + batch - 1)]
        if not ids:
            break
        pipe = store.r.pipeline(transaction=False)
        for job_id in ids:
            pipe.hmget(keys.job(job_id), list(VIEW_FIELDS))
        gone = []
        for job_id, values in zip(ids, pipe.execute(), strict=True):
            raw = dict(zip(VIEW_FIELDS, values, strict=True))
            if raw["status"] is None:
                gone.append(job_id)
                continue
            if status is not None and raw["status"] != status.value:
                continue
            if model is not None and raw["model"] is not None and raw["model"] != model:
                continue
            item = _item(store, job_id, values)
            if model is not None and item.model != model:
                continue
            found.append(item)
            if len(found) > limit:
                break
        if gone:
            store.r.zrem(index, *gone)
            # The walk goes on from the same rank: the dropped ids no longer take places.
            start -= len(gone)
        start += len(ids)
    page = found[:limit]
    more = len(found) > limit
    return JobList(jobs=page, next_after=page[-1].id if more and page else None)
