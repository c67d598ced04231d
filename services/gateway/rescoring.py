"""Re-scoring: a new job that scores a succeeded job's stored draws with another scorer.

Nothing is generated: the new job's chunk plan is the same as a fresh job's, but every chunk
goes straight to the score queue, and the draws (and greedy texts) are copied inside Redis into
the new job's keys when it is created, so the new job lives on when its source expires. A source
already archived (shared/archive.py) has its draws read from the archive, prompt by prompt,
into the new job's keys before the job is admitted.
"""

from __future__ import annotations

import redis

from services.gateway.capabilities import check_capabilities
from services.gateway.submission import check_job, refused
from shared import keys
from shared.callbacks import check_callback
from shared.config import Settings
from shared.draws import JobDraws
from shared.errors import Conflict
from shared.job_record import Verdict
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
    archived = source.archive is not None
    for _ in range(2):
        if archived:
            restore_draws(store, JobDraws(store, store.get_job(source_id)), job_id)
        # One atomic step, as for a new job: the limit, the copy of the source's draws (unless
        # restored from its archive), the record and every chunk on the score queue (no sampler
        # is needed, so no live-model check).
        admission = store.create_job(
            job_id,
            spec,
            chunks,
            tenant=tenant,
            source_job=source_id,
            max_active=settings.max_active_jobs_per_tenant,
            enqueue=stage_chunks(queue, chunks, settings, judging=judging),
            copy_source=not archived,
        )
        if admission.verdict is not Verdict.archived:
            break
        archived = True  # archived since it was read: restore from the archive, once
    if not admission.accepted:
        delete_restored(store, job_id, len(spec.prompts))
    error = refused(admission, settings)
    if error is not None:
        raise error
    return job_id


def restore_draws(store: Store, draws: JobDraws, job_id: str) -> None:
    """Write an archived source's draws, greedy and rendered texts into ``job_id``'s keys (with
    the retention of every key), one prompt per round trip."""
    archive = draws.archived
    if archive is None:
        raise Conflict(
            f"job {draws.job.id}: its draws are neither in Redis nor archived", param="id"
        )
    for index in range(len(draws.job.spec.prompts)):
        texts = archive.texts(index)
        if texts:
            pipe = store.r.pipeline(transaction=False)
            pipe.hset(keys.job_texts(job_id, index), mapping={str(i): t for i, t in texts.items()})
            pipe.expire(keys.job_texts(job_id, index), store.retention_s)
            pipe.execute()
    for name, values in (
        (keys.job_greedy_texts(job_id), archive.greedy_texts()),
        (keys.job_rendered_prompts(job_id), archive.rendered_prompts()),
    ):
        if values:
            store.r.hset(name, mapping={str(k): v for k, v in values.items()})
            store.r.expire(name, store.retention_s)


def delete_restored(store: Store, job_id: str, prompts: int) -> None:
    """Remove restored draws of a rescore that was not admitted."""
    names = [keys.job_texts(job_id, i) for i in range(prompts)]
    names += [keys.job_greedy_texts(job_id), keys.job_rendered_prompts(job_id)]
    for start in range(0, len(names), 500):
        store.r.delete(*names[start : start + 500])
