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
from shared.schemas import JobCreate, JobScores, PromptScores
from shared.stats import dkw_epsilon
from shared.stats.sequential import uniform_dkw_epsilon

router = APIRouter(prefix="/v1/jobs", tags=["jobs"], responses=ERROR_RESPONSES)


@router.get("/{job_id}/spec", summary="The job as submitted: model, prompts, sampling, scorer")
def get_spec(job_id: str, store: StoreDep, tenant: TenantDep) -> JobCreate:
    """The validated JobCreate the job was admitted with (defaults filled in)."""
    return store.get_job(job_id, tenant=tenant).spec


# One read for the job page's CDF plots (24 of them), not one request per prompt.
MAX_SCORE_PROMPTS = 100


@router.get(
    "/{job_id}/scores",
    summary="Every stored score of some prompts in sampling order (no texts): for plots",
)
def get_scores(
    job_id: str,
    store: StoreDep,
    tenant: TenantDep,
    prompt_id: Annotated[
        list[str],
        Query(
            min_length=1,
            max_length=MAX_SCORE_PROMPTS,
            description=f"The prompts' ids (repeat the parameter; 1..{MAX_SCORE_PROMPTS}).",
        ),
    ],
) -> JobScores:
    """The prompts' scores with the half-width of the band each empirical CDF is drawn with."""
    job = store.get_job(job_id, tenant=tenant)
    index = {p.id: i for i, p in enumerate(job.spec.prompts)}
    missing = [p for p in prompt_id if p not in index]
    if missing:
        raise NotFound(f"prompt_id: job {job_id} has no prompt {missing[0]!r}", param="prompt_id")
    alpha = job.spec.alpha
    uniform = job.spec.stopping is not None
    width = uniform_dkw_epsilon if uniform else partial(dkw_epsilon, two_sided=True)
    draws = JobDraws(store, job)  # live in Redis or from the job's archive
    prompts = []
    for pid in prompt_id:
        stored = draws.all_scores(index[pid])
        scores = [stored[i] for i in sorted(stored)]
        epsilon = width(len(scores), alpha) if scores else None
        prompts.append(PromptScores(prompt_id=pid, scores=scores, band_epsilon=epsilon))
    return JobScores(alpha=alpha, band_holds_under_optional_stopping=uniform, prompts=prompts)
