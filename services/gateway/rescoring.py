"""Re-scoring: a new job that scores a succeeded job's stored draws with another scorer.

Nothing is generated: the new job's chunk plan is the same as a fresh job's, but every chunk
goes straight to the score queue, and the draws (and greedy texts) are copied inside Redis into
the new job's keys when it is created, so the new job lives on when its source expires.
"""

from __future__ import annotations

import redis

from services.gateway.capabilities import check_capabilities
from services.gateway.submission import check_job, refused
from shared.callbacks import check_callback
from shared.config import Settings
from shared.errors import Conflict
from shared.planning import plan_chunks
from shared.queues import sample_queue, score_queue, stage_chunks
from shared.schemas import JobCreate, JobStatus, RescoreRequest, new_job_id
from shared.scorers.judge import JudgeOptions
from shared.store import Store


def rescore_spec(source: JobCreate, body: RescoreRequest) -> JobCreate:
    """The source's spec with the new scorer and the bound options the request gives."""
    update = body.model_dump(exclude_none=True, exclude={"scorer"})
    data = source.model_dump(mode="json")
    data.update(update)
    data["scorer"] = body.scorer.model_dump(mode="json")
    if body.callback_url is None:
        data["callback_url"] = None
    return JobCreate.model_validate(data)


def submit_rescore(
    source_id: str,
    body: RescoreRequest,
    *,
    store: Store,
    rq: redis.Redis,
    settings: Settings,
    tenant: str,
) -> str:
    """Admit a job that scores a succeeded job's stored draws with another scorer; its id."""
    source = store.get_job(source_id, tenant=tenant)
    if source.status != JobStatus.succeeded:
        raise Conflict(
            f"job {source_id} is {source.status.value}; only a succeeded job's draws can be "
            "re-scored",
            param="id",
        )
    if source.spec.stopping is not None:
        # Its n_used per prompt was chosen by looking at the old scores: new scores of the same
        # draws are not a stopped stream of the new score (bounds would be invalid).
        raise Conflict(
            f"job {source_id} is adaptive (stopping); its draws cannot be re-scored: submit a "
            "new adaptive job with the new scorer",
            param="id",
        )
    spec = rescore_spec(source.spec, body)
    check_job(spec, settings)
    if spec.callback_url is not None:
        check_callback(spec.callback_url, settings, tenant)
    if isinstance(spec.scorer, JudgeOptions):
        check_capabilities(spec, store, settings)
        # A judge scores through its model's samplers, then the scorer finalises.
        queue, judging = sample_queue(rq, spec.scorer.judge_model), True
    else:
        queue, judging = score_queue(rq), False
    job_id = new_job_id()
    chunks = plan_chunks(
        job_id, spec, chunk_max_n=settings.chunk_max_n, chunk_draws=settings.chunk_draws
    )
    # One atomic step, as for a new job: the limit, the copy of the source's draws, the record
    # and every chunk on the score queue (no sampler is needed, so no live-model check).
    admission = store.create_job(
        job_id,
        spec,
        chunks,
        tenant=tenant,
        source_job=source_id,
        max_active=settings.max_active_jobs_per_tenant,
        enqueue=stage_chunks(queue, chunks, settings, judging=judging),
    )
    error = refused(admission, settings)
    if error is not None:
        raise error
    return job_id
