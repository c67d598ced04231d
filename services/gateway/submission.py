"""Accepting a job: checks that need the configuration or live state, then plan, store, enqueue."""

from __future__ import annotations

import logging
import uuid

import redis

from shared.adaptive import check_adaptive, most_draws, rule_of
from shared.callbacks import check_callback, set_status_and_notify
from shared.config import Settings
from shared.errors import InvalidInput, LimitExceeded, NotFound, TooManyRequests
from shared.planning import plan_chunks, plan_first_rounds
from shared.queues import enqueue_sampling
from shared.schemas import SCORERS_NEEDING_REFERENCE, ErrorInfo, JobCreate, JobStatus
from shared.store import ACTIVE, Store

log = logging.getLogger(__name__)


def check_job(spec: JobCreate, settings: Settings) -> None:
    """Limits and cross-field rules, each error naming the field and the allowed values."""
    if len(spec.prompts) > settings.max_prompts_per_job:
        raise LimitExceeded(
            f"prompts: {len(spec.prompts)} prompts is over the limit of "
            f"{settings.max_prompts_per_job} per job",
            param="prompts",
        )
    check_adaptive(spec, settings)  # before sampling.n: with a stopping rule it is max_n
    if spec.sampling.n > settings.max_n:
        raise LimitExceeded(
            f"sampling.n: {spec.sampling.n} is over the limit; allowed 1..{settings.max_n}",
            param="sampling.n",
        )
    if spec.sampling.max_tokens > settings.max_tokens_limit:
        raise LimitExceeded(
            f"sampling.max_tokens: {spec.sampling.max_tokens} is over the limit; "
            f"allowed 1..{settings.max_tokens_limit}",
            param="sampling.max_tokens",
        )
    draws = most_draws(spec)
    if draws > settings.max_draws_per_job:
        n_name = "sampling.n" if spec.stopping is None else "stopping.max_n"
        raise LimitExceeded(
            f"prompts x {n_name} = {draws} draws is over the limit of "
            f"{settings.max_draws_per_job} per job"
            + ("" if spec.stopping is None else " (or set max_draws)"),
            param=n_name,
        )
    seen: dict[str, int] = {}
    for i, prompt in enumerate(spec.prompts):
        if prompt.id in seen:
            raise InvalidInput(
                f"prompts[{i}].id: {prompt.id!r} repeats prompts[{seen[prompt.id]}].id; ids must "
                "be unique in a job",
                param=f"prompts[{i}].id",
            )
        seen[prompt.id] = i
        if spec.scorer.name in SCORERS_NEEDING_REFERENCE and prompt.reference is None:
            raise InvalidInput(
                f"prompts[{i}].reference: scorer {spec.scorer.name!r} compares each draw with a "
                "reference; give one, or use scorer 'regex'",
                param=f"prompts[{i}].reference",
            )


def check_active_limit(store: Store, settings: Settings, tenant: str) -> None:
    """The tenant's queued and running jobs stay under the limit (429 with Retry-After)."""
    active = store.active_jobs(tenant)
    if active >= settings.max_active_jobs_per_tenant:
        # A soft limit: two submissions racing past the check both get in.
        raise TooManyRequests(
            f"{active} jobs of this tenant are queued or running; the limit is "
            f"{settings.max_active_jobs_per_tenant}; retry when one has finished",
            retry_after_s=30,
        )


def submit_job(
    spec: JobCreate, *, store: Store, rq: redis.Redis, settings: Settings, tenant: str = ""
) -> str:
    """Validate against live state, store the job and its chunk plan, enqueue every chunk."""
    check_job(spec, settings)
    if spec.callback_url is not None:
        check_callback(spec.callback_url, settings, tenant)
    check_active_limit(store, settings, tenant)
    served = {m.name for m in store.live_models(ttl_s=settings.worker_ttl_s)}
    if spec.model not in served:
        allowed = ", ".join(sorted(served)) or "none: start a sampler worker first"
        raise NotFound(
            f"model: no live sampler serves {spec.model!r}; served models: {allowed}",
            param="model",
        )
    job_id = uuid.uuid4().hex
    if spec.stopping is None:
        chunks = plan_chunks(
            job_id, spec, chunk_max_n=settings.chunk_max_n, chunk_draws=settings.chunk_draws
        )
    else:
        chunks = plan_first_rounds(
            job_id,
            spec,
            rule_of(spec).first_end(),
            chunk_max_n=settings.chunk_max_n,
            chunk_draws=settings.chunk_draws,
        )
    store.create_job(job_id, spec, chunks, tenant=tenant, chunk_max_n=settings.chunk_max_n)
    try:
        for chunk in chunks:
            enqueue_sampling(rq, spec.model, chunk, settings)
    except redis.RedisError as exc:
        log.exception("enqueueing job %s failed", job_id)
        set_status_and_notify(
            store,
            rq,
            settings,
            job_id,
            JobStatus.failed,
            allowed_from=ACTIVE,
            error=ErrorInfo(code="enqueue_failed", message=f"could not enqueue: {exc}"),
        )
        raise
    return job_id
