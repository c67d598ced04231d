"""What a job was asked and every score of one prompt: the two reads the job browser (/ui) needs
beyond results and samples, both scoped to the caller's tenant like every job route."""

from __future__ import annotations

from functools import partial
from typing import Annotated

from fastapi import APIRouter, Query

from services.gateway.deps import StoreDep, TenantDep
from services.gateway.errors import ERROR_RESPONSES
from shared.draws import JobDraws
from shared.errors import NotFound
from shared.schemas import JobCreate, PromptScores
from shared.stats import dkw_epsilon
from shared.stats.sequential import uniform_dkw_epsilon

router = APIRouter(prefix="/v1/jobs", tags=["jobs"], responses=ERROR_RESPONSES)


@router.get("/{job_id}/spec", summary="The job as submitted: model, prompts, sampling, scorer")
def get_spec(job_id: str, store: StoreDep, tenant: TenantDep) -> JobCreate:
    """The validated JobCreate the job was admitted with (defaults filled in)."""
    return store.get_job(job_id, tenant=tenant).spec


@router.get(
    "/{job_id}/scores",
    summary="Every stored score of one prompt in sampling order (no texts): for plots",
)
def get_scores(
    job_id: str,
    store: StoreDep,
    tenant: TenantDep,
    prompt_id: Annotated[str, Query(min_length=1, max_length=256, description="The prompt's id.")],
) -> PromptScores:
    """The prompt's scores with the half-width of the band its empirical CDF is drawn with."""
    job = store.get_job(job_id, tenant=tenant)
    ids = [p.id for p in job.spec.prompts]
    if prompt_id not in ids:
        raise NotFound(f"prompt_id: job {job_id} has no prompt {prompt_id!r}", param="prompt_id")
    stored = JobDraws(store, job).all_scores(ids.index(prompt_id))
    scores = [stored[i] for i in sorted(stored)]
    alpha = job.spec.alpha
    uniform = job.spec.stopping is not None
    width = uniform_dkw_epsilon if uniform else partial(dkw_epsilon, two_sided=True)
    return PromptScores(
        prompt_id=prompt_id,
        scores=scores,
        alpha=alpha,
        band_epsilon=width(len(scores), alpha) if scores else None,
        band_holds_under_optional_stopping=uniform,
    )
