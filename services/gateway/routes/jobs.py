"""Evaluation jobs: submit, watch, read results and draws, cancel."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from fastapi.responses import HTMLResponse
from pydantic import BaseModel

from services.gateway import cancellation
from services.gateway.beyond_schema import JOB_RULES, RESCORE_RULES, openapi_extra
from services.gateway.deps import (
    AsyncStoreDep,
    RqDep,
    SettingsDep,
    StoreDep,
    SubmitterDep,
    TenantDep,
)
from services.gateway.errors import ERROR_RESPONSES, ERROR_RESPONSES_JSON
from services.gateway.rescoring import submit_rescore
from shared.draws import JobDraws
from shared.errors import NotFound
from shared.job_listing import list_jobs
from shared.report import render_report
from shared.results import readable_results
from shared.schemas import (
    JOB_ID_PATTERN,
    JobAccepted,
    JobCreate,
    JobList,
    JobResults,
    JobStatus,
    JobView,
    RescoreRequest,
    Sample,
    SamplesPage,
)

router = APIRouter(prefix="/v1/jobs", tags=["jobs"], responses=ERROR_RESPONSES)


def json_response(
    model: BaseModel, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """``model`` as FastAPI would answer it as the route's response model, in one pass: FastAPI
    validates a returned model against the response model again, then dumps and encodes it in
    two steps, which cost submit and poll more than their Redis call's encoding."""
    return Response(
        model.model_dump_json(by_alias=True), status, headers, media_type="application/json"
    )


@router.post(
    "",
    status_code=202,
    response_model=JobAccepted,
    summary="Submit an evaluation job",
    openapi_extra=openapi_extra(JOB_RULES),
)
async def create_job(body: JobCreate, submitter: SubmitterDep, tenant: TenantDep) -> Response:
    """Admit a job: 202 with its id and a Location header, or 4xx naming the field."""
    job_id = await submitter.submit(body, tenant=tenant)
    accepted = JobAccepted(id=job_id, status=JobStatus.queued)
    return json_response(accepted, 202, {"Location": f"/v1/jobs/{job_id}"})


@router.post(
    "/{job_id}/rescore",
    status_code=202,
    summary="A new job that scores this succeeded job's stored draws another way (no sampling)",
    openapi_extra=openapi_extra(RESCORE_RULES),
)
def rescore_job(
    job_id: str,
    body: RescoreRequest,
    response: Response,
    store: StoreDep,
    rq: RqDep,
    settings: SettingsDep,
    tenant: TenantDep,
) -> JobAccepted:
    """Admit a job scoring a succeeded job's draws with another scorer: 202 and its id."""
    new_id = submit_rescore(job_id, body, store=store, rq=rq, settings=settings, tenant=tenant)
    response.headers["Location"] = f"/v1/jobs/{new_id}"
    return JobAccepted(id=new_id, status=JobStatus.queued)


@router.get("", summary="The caller's jobs, newest first (cursor-paginated)")
def get_jobs(
    store: StoreDep,
    tenant: TenantDep,
    limit: Annotated[int, Query(ge=1, le=200, description="Most jobs returned.")] = 50,
    after: Annotated[
        str | None,
        Query(
            pattern=JOB_ID_PATTERN,
            description="`next_after` of the previous page: a job id (32 lower-case hex "
            "digits). 404 when no job of the caller has it (deleted or expired: the walk ends).",
        ),
    ] = None,
    status: Annotated[JobStatus | None, Query(description="Only jobs in this status.")] = None,
    model: Annotated[
        str | None, Query(min_length=1, max_length=256, description="Only jobs of this model.")
    ] = None,
) -> JobList:
    """The caller's jobs, newest first; pass ``next_after`` as ``after`` for the next page."""
    return list_jobs(store, tenant, limit=limit, after=after, status=status, model=model)


@router.get("/{job_id}", response_model=JobView, summary="Status and progress of a job")
async def get_job(job_id: str, store: AsyncStoreDep, tenant: TenantDep) -> Response:
    """A job's status, progress and error, if the caller owns it (404 otherwise)."""
    return json_response(await store.job_view(job_id, tenant=tenant))


@router.get(
    "/{job_id}/results",
    summary="Per-prompt bounds and a summary (once succeeded; partial once cancelled)",
    response_model_by_alias=True,
)
def get_results(job_id: str, store: StoreDep, tenant: TenantDep) -> JobResults:
    """Per-prompt bounds and the summary; 409 while the job has no results yet."""
    return readable_results(store, store.get_job(job_id, tenant=tenant))


@router.get(
    "/{job_id}/report",
    summary="A self-contained HTML report with tables and plots (once results exist)",
    response_class=HTMLResponse,
    responses=ERROR_RESPONSES_JSON,
)
def get_report(job_id: str, store: StoreDep, tenant: TenantDep) -> HTMLResponse:
    """The results as one self-contained HTML page with tables and plots."""
    job = store.get_job(job_id, tenant=tenant)
    results = readable_results(store, job)
    index = {p.id: i for i, p in enumerate(job.spec.prompts)}
    draws = JobDraws(store, job)
    scores = [
        [v for _, v in sorted(draws.all_scores(index[p.id]).items())] for p in results.prompts
    ]
    return HTMLResponse(render_report(job_id, job.spec, results, scores))


@router.get("/{job_id}/samples", summary="Every stored draw of one prompt, with its score")
def get_samples(
    job_id: str,
    store: StoreDep,
    tenant: TenantDep,
    prompt_id: Annotated[str, Query(min_length=1, max_length=256, description="The prompt's id.")],
    offset: Annotated[int, Query(ge=0, le=10_000_000, description="First sample index.")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000, description="Most samples returned.")] = 100,
) -> SamplesPage:
    """A page of one prompt's stored draws and their scores; draws not made yet are left out."""
    job = store.get_job(job_id, tenant=tenant)
    ids = [p.id for p in job.spec.prompts]
    if prompt_id not in ids:
        raise NotFound(f"prompt_id: job {job_id} has no prompt {prompt_id!r}", param="prompt_id")
    index = ids.index(prompt_id)
    indices = list(range(offset, min(offset + limit, job.spec.sampling.n)))
    draws = JobDraws(store, job)
    texts, scores = draws.page(index, indices)
    samples = [
        Sample(index=i, text=t, score=s)
        for i, t, s in zip(indices, texts, scores, strict=True)
        if t is not None
    ]
    rendered = job.spec.prompts[index].prompt or draws.rendered_prompt(index)
    return SamplesPage(samples=samples, total=draws.count(index), rendered_prompt=rendered)


@router.delete(
    "/{job_id}",
    summary="Cancel a job that has not finished; with purge=true, also delete all its data",
    responses={204: {"description": "Purged: the job and its data are gone"}},
)
def cancel_job(
    job_id: str,
    store: StoreDep,
    rq: RqDep,
    settings: SettingsDep,
    tenant: TenantDep,
    purge: Annotated[
        bool, Query(description="Delete the job's record, draws and results as well.")
    ] = False,
) -> Any:
    """Cancel the job (its stored draws are kept), or with ``purge`` delete all its data."""
    job = store.get_job(job_id, tenant=tenant)
    if purge:
        cancellation.purge_job(store, rq, settings, job)
        return Response(status_code=204)
    return cancellation.cancel_job(store, rq, settings, job)
