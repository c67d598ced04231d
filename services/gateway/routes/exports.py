"""Downloads of a job: every draw as JSON lines or Parquet, the results as CSV or Parquet."""

from __future__ import annotations

import os
import tempfile
from enum import StrEnum
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse, PlainTextResponse, StreamingResponse
from starlette.background import BackgroundTask

from services.gateway.deps import StoreDep, TenantDep
from services.gateway.errors import ERROR_RESPONSES_JSON
from shared.exports import results_csv, samples_jsonl, write_draws_parquet, write_results_parquet
from shared.results import readable_results

router = APIRouter(prefix="/v1/jobs", tags=["exports"], responses=ERROR_RESPONSES_JSON)


class ParquetTable(StrEnum):
    """The tables GET /v1/jobs/{id}/export.parquet can return."""

    draws = "draws"
    results = "results"


@router.get(
    "/{job_id}/samples.jsonl",
    summary="Every stored draw, one JSON object per line (prompt_id, index, text, score); streamed",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/x-ndjson": {}}}},
)
def get_samples_jsonl(job_id: str, store: StoreDep, tenant: TenantDep) -> StreamingResponse:
    """Every draw of every prompt, one JSON object per line, streamed."""
    job = store.get_job(job_id, tenant=tenant)
    return StreamingResponse(
        samples_jsonl(store, job),
        media_type="application/x-ndjson",
        headers={"Content-Disposition": f'attachment; filename="{job_id}-samples.jsonl"'},
    )


@router.get(
    "/{job_id}/results.csv",
    summary="The results as CSV: one row per prompt, the bounds flattened into columns",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/csv": {}}}},
)
def get_results_csv(job_id: str, store: StoreDep, tenant: TenantDep) -> PlainTextResponse:
    """The results as CSV, one row per prompt."""
    results = readable_results(store, store.get_job(job_id, tenant=tenant))
    return PlainTextResponse(
        results_csv(results),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{job_id}-results.csv"'},
    )


@router.get(
    "/{job_id}/export.parquet",
    summary="A Parquet file: the draws table (default) or the results table (?table=results)",
    response_class=FileResponse,
    responses={200: {"content": {"application/vnd.apache.parquet": {}}}},
)
def get_parquet(
    job_id: str,
    store: StoreDep,
    tenant: TenantDep,
    table: Annotated[
        ParquetTable,
        Query(
            description="draws: prompt_id, index, text, score per draw; results: one row per "
            "prompt with the bounds flattened into columns."
        ),
    ] = ParquetTable.draws,
) -> FileResponse:
    """The draws or the results table as a Parquet file."""
    job = store.get_job(job_id, tenant=tenant)
    results = readable_results(store, job) if table == ParquetTable.results else None
    # Parquet's footer is written last, so the file is built on disk (bounded memory), sent,
    # and removed once sent.
    fd, name = tempfile.mkstemp(prefix=f"probeval-{job_id}-", suffix=".parquet")
    os.close(fd)
    path = Path(name)
    try:
        if results is not None:
            write_results_parquet(results, path)
        else:
            write_draws_parquet(store, job, path)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return FileResponse(
        path,
        media_type="application/vnd.apache.parquet",
        filename=f"{job_id}-{table.value}.parquet",
        background=BackgroundTask(path.unlink, missing_ok=True),
    )
