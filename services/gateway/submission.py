"""Accepting a job: checks that need the configuration or live state, then plan, store, enqueue.

Cross-field and limit rules go in ``check_job`` (pure: the spec and the settings); rules that
need live state go in the admission step (``shared.job_record.ADMIT_JOB``), which decides and
writes atomically."""

from __future__ import annotations

import functools
import time

import anyio.to_thread
import redis
from rq import Queue

from services.gateway.capabilities import check_capabilities, needs_capabilities
from shared.adaptive import check_adaptive, most_draws, rule_of
from shared.async_store import AsyncStore
from shared.callbacks import check_callback
from shared.config import Settings
from shared.errors import InvalidInput, LimitExceeded, NotFound, TooManyRequests
from shared.job_record import Admission, Verdict
from shared.planning import plan_chunks, plan_first_rounds
from shared.queues import sample_queue, stage_chunks
from shared.schemas import ChunkTask, JobCreate, new_job_id
from shared.scorers import needs_reference
from shared.store import Store


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
    if needs_reference(spec.scorer):
        for i, prompt in enumerate(spec.prompts):
            if prompt.reference is None:
                raise InvalidInput(
                    f"prompts[{i}].reference: scorer {spec.scorer.name!r} compares each draw "
                    "with a reference; give one, or use a scorer that needs none (e.g. 'regex')",
                    param=f"prompts[{i}].reference",
                )


def refused(admission: Admission, settings: Settings) -> TooManyRequests | None:
    """The 429 for an admission refused on the tenant's active-job limit (job or rescore)."""
    if admission.verdict is not Verdict.quota:
        return None
    return TooManyRequests(
        f"{admission.active} jobs of this tenant are queued or running; the limit is "
        f"{settings.max_active_jobs_per_tenant}; retry when one has finished",
        retry_after_s=30,
    )


class Submitter:
    """Accepts jobs for one gateway process: built once at start-up (``create_app``'s lifespan)
    with the clients it needs, so a submit resolves one dependency, not five."""

    def __init__(
        self, settings: Settings, store: AsyncStore, sync_store: Store, rq: redis.Redis
    ) -> None:
        self.settings = settings
        self.store = store
        self.sync_store = sync_store
        self.rq = rq
        # RQ's Queue costs ~30 us to build: kept per model once a job for it was accepted (so
        # only served models, not every name a client sends).
        self._queues: dict[str, Queue] = {}

    def plan(self, job_id: str, spec: JobCreate) -> list[ChunkTask]:
        """Every chunk of a fixed-n job; an adaptive job's first rounds (later ones are planned
        as earlier ones are scored, shared.adaptive)."""
        settings = self.settings
        if spec.stopping is None:
            return plan_chunks(
                job_id, spec, chunk_max_n=settings.chunk_max_n, chunk_draws=settings.chunk_draws
            )
        return plan_first_rounds(
            job_id,
            spec,
            rule_of(spec).first_end(),
            chunk_max_n=settings.chunk_max_n,
            chunk_draws=settings.chunk_draws,
        )

    async def submit(self, spec: JobCreate, *, tenant: str) -> str:
        """Check, plan, then admit and enqueue in one Redis round trip: the admission step
        decides (quota, live model) and, if both pass, writes the job and enqueues its chunks,
        atomically."""
        settings = self.settings
        check_job(spec, settings)
        if spec.callback_url is not None:
            # It resolves the host name (SSRF check): blocking, so off the event loop.
            await anyio.to_thread.run_sync(check_callback, spec.callback_url, settings, tenant)
        if needs_capabilities(spec):
            # Chat prompts and judges only (plain jobs keep their one round trip): what the
            # samplers registered, read with the sync store off the event loop.
            await anyio.to_thread.run_sync(check_capabilities, spec, self.sync_store, settings)
        job_id = new_job_id()
        chunks = self.plan(job_id, spec)
        queue = self._queues.get(spec.model)
        if queue is None:  # not `or`: a Queue's truth is its length, read from Redis
            queue = sample_queue(self.rq, spec.model)
        # From RQ's template (shared.rq_records): no I/O. Were RQ's record of another shape,
        # RQ stages it itself and reads the server's version once per connection, blocking.
        enqueue = stage_chunks(queue, chunks, settings)
        admission = await self.store.create_job(
            job_id,
            spec,
            chunks,
            tenant=tenant,
            chunk_max_n=settings.chunk_max_n,
            max_active=settings.max_active_jobs_per_tenant,
            live_after=time.time() - settings.worker_ttl_s,
            enqueue=enqueue,
        )
        error = refused(admission, settings)
        if error is not None:
            raise error
        if admission.verdict is Verdict.no_model:
            # The refusal path only: list what is served, for the message.
            models = await anyio.to_thread.run_sync(
                functools.partial(self.sync_store.live_models, ttl_s=settings.worker_ttl_s)
            )
            allowed = ", ".join(m.name for m in models) or "none: start a sampler worker first"
            raise NotFound(
                f"model: no live sampler serves {spec.model!r}; served models: {allowed}",
                param="model",
            )
        self._queues[spec.model] = queue
        return job_id
