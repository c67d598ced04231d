"""Typed reads and writes of jobs, chunk plans, draws, scores and results in Redis.

Writes of draws and scores are idempotent per (job, prompt, sample index): a chunk that runs
twice (a retry, or a worker that died after writing) never duplicates or changes a draw, and
progress counts each draw once. The first write of an index wins.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import redis

from shared import keys
from shared.errors import NotFound
from shared.job_record import (
    ADMIT_JOB,
    SET_STATUS,
    Admission,
    admit_args,
    admit_keys,
    callback_state,
    parse_admission,
)
from shared.metrics import record_status_change
from shared.queues import StagedChunks
from shared.schemas import (
    ACTIVE_STATUSES,
    AdaptiveProgress,
    CallbackState,
    ChunkTask,
    ErrorInfo,
    GreedyResult,
    JobCreate,
    JobResults,
    JobStatus,
    JobView,
    ModelCapabilities,
    ModelInfo,
    Progress,
)

Redis = redis.Redis
Pipeline = redis.client.Pipeline

# HSETNX each (index, value) pair and add the number of new fields to the job's counter.
_SAVE_NEW_FIELDS = """
local added = 0
for i = 1, #ARGV - 2, 2 do
  added = added + redis.call('HSETNX', KEYS[1], ARGV[i], ARGV[i + 1])
end
redis.call('EXPIRE', KEYS[1], ARGV[#ARGV])
if added > 0 and redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('HINCRBY', KEYS[2], ARGV[#ARGV - 1], added)
end
return added
"""

ACTIVE = ACTIVE_STATUSES  # the statuses a job can still leave
# Record field: the chunk ids of an archived job, whose chunk plan was deleted (shared/archive.py).
CHUNK_IDS_FIELD = "chunk_ids"


@dataclass(frozen=True)
class JobRecord:
    """A job as stored: its spec and its state."""

    id: str
    spec: JobCreate
    status: JobStatus
    created_at: float
    updated_at: float
    samples_done: int
    samples_total: int
    chunks_total: int
    tenant: str
    error: ErrorInfo | None
    source_job: str | None = None
    callback: CallbackState | None = None
    prompts_open: int | None = None  # adaptive jobs: prompts whose stream is still drawing
    archive: str | None = None  # the archive folder, once the draws moved there (shared/archive.py)

    def view(self) -> JobView:
        adaptive = None
        if self.prompts_open is not None:
            adaptive = AdaptiveProgress(
                prompts_open=self.prompts_open,
                prompts_stopped=len(self.spec.prompts) - self.prompts_open,
            )
        return JobView(
            id=self.id,
            model=self.spec.model,
            status=self.status,
            progress=Progress(samples_done=self.samples_done, samples_total=self.samples_total),
            adaptive=adaptive,
            created_at=self.created_at,
            updated_at=self.updated_at,
            error=self.error,
            source_job=self.source_job,
            callback=self.callback,
        )


def connect(url: str) -> Redis:
    """A client for the store (decoded strings). RQ needs its own client: it reads bytes."""
    return redis.Redis.from_url(url, decode_responses=True, health_check_interval=30)


class Store:
    """Jobs and their data in Redis; every key comes from ``shared.keys``."""

    def __init__(
        self,
        client: Redis,
        *,
        retention_s: int,
        archive_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.r = client
        self.retention_s = retention_s
        # fsspec storage options for reading archived jobs (PROBEVAL_ARCHIVE_OPTIONS).
        self.archive_options: Mapping[str, Any] = archive_options or {}
        self._save_new = client.register_script(_SAVE_NEW_FIELDS)
        self._set_status = client.register_script(SET_STATUS)
        self._admit = client.register_script(ADMIT_JOB)

    # ---- jobs ------------------------------------------------------------------------------

    def create_job(
        self,
        job_id: str,
        spec: JobCreate,
        chunks: Sequence[ChunkTask],
        *,
        tenant: str = "",
        source_job: str | None = None,
        chunk_max_n: int | None = None,
        max_active: int | None = None,
        live_after: float | None = None,
        enqueue: StagedChunks | None = None,
        copy_source: bool = True,
    ) -> Admission:
        """Store the job, its chunk plan, its place among the tenant's active jobs and in the
        tenant's listing, and enqueue the chunks as ``enqueue`` stages them
        (``shared.queues.stage_chunks``), in one atomic step, unless the tenant has
        ``max_active`` active jobs or no worker serving the model has a heartbeat after
        ``live_after`` (None: no such check). A rescore job names
        the ``source_job`` whose draws it scores: they are copied server-side into its own keys in
        the same step, and its draws count as generated (no sampling chunk runs). An adaptive job
        (``spec.stopping``) plans only its first rounds here: its planned draws, its open prompts
        and the slice size ``chunk_max_n`` its later rounds must be cut with are recorded.
        With ``copy_source`` False the caller wrote the rescore's draws already (its source is
        archived: ``services.gateway.rescoring``)."""
        reply = self._admit(
            keys=admit_keys(job_id, spec.model, tenant),
            args=admit_args(
                job_id,
                spec,
                chunks,
                tenant=tenant,
                now=time.time(),
                retention_s=self.retention_s,
                max_active=max_active,
                live_after=live_after,
                source_job=source_job,
                chunk_max_n=chunk_max_n,
                enqueue=enqueue,
                copy_source=copy_source,
            ),
        )
        return parse_admission(reply)

    def get_job(self, job_id: str, *, tenant: str | None = None) -> JobRecord:
        """The job, or NotFound (also when it belongs to another tenant: no existence leak)."""
        raw = self.r.hgetall(keys.job(job_id))
        if not raw or "spec" not in raw or (tenant is not None and raw.get("tenant", "") != tenant):
            raise NotFound(f"no job with id {job_id!r}", param="id")
        error = ErrorInfo.model_validate_json(raw["error"]) if raw.get("error") else None
        return JobRecord(
            id=job_id,
            spec=JobCreate.model_validate_json(raw["spec"]),
            status=JobStatus(str(raw["status"])),
            created_at=float(raw["created_at"]),
            updated_at=float(raw["updated_at"]),
            samples_done=int(raw.get("samples_done", 0)),
            samples_total=int(raw["samples_total"]),
            chunks_total=int(raw["chunks_total"]),
            prompts_open=int(raw["prompts_open"]) if "prompts_open" in raw else None,
            tenant=str(raw.get("tenant", "")),
            error=error,
            source_job=str(raw["source_job"]) if raw.get("source_job") else None,
            callback=callback_state({str(k): str(v) for k, v in raw.items()}),
            archive=str(raw["archive"]) if raw.get("archive") else None,
        )

    def get_status(self, job_id: str) -> JobStatus | None:
        value = self.r.hget(keys.job(job_id), "status")
        return JobStatus(str(value)) if value else None

    def set_status(
        self,
        job_id: str,
        new: JobStatus,
        *,
        allowed_from: Iterable[JobStatus],
        error: ErrorInfo | None = None,
    ) -> JobStatus | None:
        """Compare-and-set the status; returns the old status, or None if nothing changed."""
        old = self._set_status(
            keys=[keys.job(job_id)],
            args=[
                new.value,
                "1" if new.terminal else "0",
                job_id,
                repr(time.time()),
                error.model_dump_json() if error else "",
                *(s.value for s in allowed_from),
            ],
        )
        if old:
            record_status_change(self.r, old, new)
        return JobStatus(old) if old else None

    def chunk_plan(self, job_id: str) -> list[ChunkTask]:
        raw = self.r.hgetall(keys.job_chunks(job_id))
        return sorted(
            (ChunkTask.model_validate_json(v) for v in raw.values()), key=lambda c: c.chunk_id
        )

    def chunk_ids(self, job_id: str) -> list[int]:
        """The ids of the job's chunks, from its plan or, once archived, its record."""
        plan = self.r.hkeys(keys.job_chunks(job_id))
        if plan:
            return sorted(int(c) for c in plan)
        kept = self.r.hget(keys.job(job_id), CHUNK_IDS_FIELD)
        return [int(c) for c in str(kept).split(",")] if kept else []

    def delete_job(self, job_id: str) -> int:
        """Remove every key of the job; returns how many keys were removed."""
        tenant, status = self.r.hmget(keys.job(job_id), ["tenant", "status"])
        names = [
            keys.job(job_id),
            *self.r.scan_iter(match=keys.job_keys_pattern(job_id), count=500),
        ]
        pipe = self.r.pipeline(transaction=True)
        pipe.delete(*names)
        pipe.zrem(keys.JOBS_INDEX, job_id)
        if tenant is not None:
            pipe.zrem(keys.tenant_jobs(str(tenant)), job_id)
            pipe.zrem(keys.tenant_active_jobs(str(tenant)), job_id)
        if status is not None:
            record_status_change(pipe, status, None)
        return int(pipe.execute()[0])

    def active_jobs(self, tenant: str) -> int:
        """How many of the tenant's jobs are queued or running (records that expired drop out)."""
        key = keys.tenant_active_jobs(tenant)
        pipe = self.r.pipeline(transaction=True)
        pipe.zremrangebyscore(key, "-inf", time.time())
        pipe.zcard(key)
        return int(pipe.execute()[-1])

    # ---- draws and scores ---------------------------------------------------------------------

    def save_texts(self, job_id: str, prompt_index: int, texts: dict[int, str]) -> int:
        """Store draws by sample index (first write wins); returns how many were new."""
        return self.save_texts_many(job_id, {prompt_index: texts})

    def save_texts_many(
        self,
        job_id: str,
        texts: Mapping[int, Mapping[int, str]],
        *,
        also: Callable[[Pipeline], object] | None = None,
    ) -> int:
        """``save_texts`` for several prompts (prompt index -> sample index -> text) in one round
        trip; ``also`` queues more commands (counters) on the same pipeline."""
        return self._save_new_many(job_id, texts, keys.job_texts, "samples_generated", also)

    def save_scores(self, job_id: str, prompt_index: int, scores: dict[int, float]) -> int:
        """Store scores by sample index (first write wins); progress counts the new ones."""
        return self.save_scores_many(job_id, {prompt_index: scores})

    def save_scores_many(
        self,
        job_id: str,
        scores: Mapping[int, Mapping[int, float]],
        *,
        also: Callable[[Pipeline], object] | None = None,
    ) -> int:
        """``save_scores`` for several prompts in one round trip (see ``save_texts_many``)."""
        as_text = {
            p: {i: repr(float(v)) for i, v in values.items()} for p, values in scores.items()
        }
        return self._save_new_many(job_id, as_text, keys.job_scores, "samples_done", also)

    def _save_new_many(
        self,
        job_id: str,
        values: Mapping[int, Mapping[int, str]],
        key: Callable[[str, int], str],
        counter: str,
        also: Callable[[Pipeline], object] | None,
    ) -> int:
        # One script call per prompt, each atomic as before (a crash between two leaves whole
        # prompts stored or not), sent together: under load every round trip waits for Redis
        # to be scheduled, and a chunk holds up to tens of prompts (docs/BENCHMARKS.md).
        pipe = self.r.pipeline(transaction=False)
        calls = 0
        for prompt_index, items in values.items():
            if not items:
                continue
            args: list[str | int] = []
            for index, value in items.items():
                args += [index, value]
            self._save_new(
                keys=[key(job_id, prompt_index), keys.job(job_id)],
                args=[*args, counter, self.retention_s],
                client=pipe,
            )
            calls += 1
        if also is not None:
            also(pipe)
        if not calls and also is None:
            return 0
        return sum(int(v) for v in pipe.execute()[:calls])

    def texts(self, job_id: str, prompt_index: int, indices: Sequence[int]) -> list[str | None]:
        return self.texts_many(job_id, {prompt_index: indices})[prompt_index]

    def texts_many(
        self, job_id: str, wanted: Mapping[int, Sequence[int]]
    ) -> dict[int, list[str | None]]:
        """Stored draws of several prompts (prompt index -> sample indices) in one round trip;
        ``None`` where a draw is missing."""
        pipe = self.r.pipeline(transaction=False)
        asked = [(p, indices) for p, indices in wanted.items() if indices]
        for prompt_index, indices in asked:
            pipe.hmget(keys.job_texts(job_id, prompt_index), [str(i) for i in indices])
        out: dict[int, list[str | None]] = {p: [] for p in wanted}
        if asked:
            for (prompt_index, _), raw in zip(asked, pipe.execute(), strict=True):
                out[prompt_index] = [None if v is None else str(v) for v in raw]
        return out

    def scores(self, job_id: str, prompt_index: int, indices: Sequence[int]) -> list[float | None]:
        if not indices:
            return []
        raw = self.r.hmget(keys.job_scores(job_id, prompt_index), [str(i) for i in indices])
        return [float(v) if v is not None else None for v in raw]

    def all_scores(self, job_id: str, prompt_index: int) -> dict[int, float]:
        raw = self.r.hgetall(keys.job_scores(job_id, prompt_index))
        return {int(k): float(v) for k, v in raw.items()}

    def count_texts(self, job_id: str, prompt_index: int) -> int:
        return int(self.r.hlen(keys.job_texts(job_id, prompt_index)))

    def save_greedy_text(self, job_id: str, prompt_index: int, text: str) -> None:
        pipe = self.r.pipeline(transaction=True)
        pipe.hsetnx(keys.job_greedy_texts(job_id), str(prompt_index), text)
        pipe.expire(keys.job_greedy_texts(job_id), self.retention_s)
        pipe.execute()

    def greedy_text(self, job_id: str, prompt_index: int) -> str | None:
        value = self.r.hget(keys.job_greedy_texts(job_id), str(prompt_index))
        return None if value is None else str(value)

    def save_greedy(self, job_id: str, prompt_index: int, result: GreedyResult) -> None:
        pipe = self.r.pipeline(transaction=True)
        pipe.hset(keys.job_greedy(job_id), str(prompt_index), result.model_dump_json())
        pipe.expire(keys.job_greedy(job_id), self.retention_s)
        pipe.execute()

    def save_rendered_prompt(self, job_id: str, prompt_index: int, text: str) -> None:
        """The text a chat prompt was rendered to (first write wins: one rendering per prompt)."""
        pipe = self.r.pipeline(transaction=True)
        pipe.hsetnx(keys.job_rendered_prompts(job_id), str(prompt_index), text)
        pipe.expire(keys.job_rendered_prompts(job_id), self.retention_s)
        pipe.execute()

    def rendered_prompts(self, job_id: str) -> dict[int, str]:
        raw = self.r.hgetall(keys.job_rendered_prompts(job_id))
        return {int(k): str(v) for k, v in raw.items()}

    def rendered_prompt(self, job_id: str, prompt_index: int) -> str | None:
        value = self.r.hget(keys.job_rendered_prompts(job_id), str(prompt_index))
        return None if value is None else str(value)

    def greedy(self, job_id: str) -> dict[int, GreedyResult]:
        raw = self.r.hgetall(keys.job_greedy(job_id))
        return {int(k): GreedyResult.model_validate_json(v) for k, v in raw.items()}

    def mark_chunk_scored(self, job_id: str, chunk_id: int) -> int:
        """Record a scored chunk; returns how many of the job's chunks are scored."""
        pipe = self.r.pipeline(transaction=True)
        pipe.sadd(keys.job_chunks_scored(job_id), str(chunk_id))
        pipe.expire(keys.job_chunks_scored(job_id), self.retention_s)
        pipe.scard(keys.job_chunks_scored(job_id))
        return int(pipe.execute()[-1])

    # ---- results -----------------------------------------------------------------------------

    def save_results(self, job_id: str, results: JobResults) -> None:
        self.r.set(
            keys.job_results(job_id), results.model_dump_json(by_alias=True), ex=self.retention_s
        )

    def results(self, job_id: str) -> JobResults | None:
        raw = self.r.get(keys.job_results(job_id))
        return JobResults.model_validate_json(raw) if raw else None

    # ---- worker registry -----------------------------------------------------------------------

    def heartbeat(self, model: str, worker_id: str, engine: str, *, ttl_s: float) -> None:
        now = time.time()
        pipe = self.r.pipeline(transaction=True)
        pipe.hset(keys.MODELS, model, engine)
        pipe.zadd(keys.model_workers(model), {worker_id: now})
        pipe.zremrangebyscore(keys.model_workers(model), "-inf", now - ttl_s)
        pipe.execute()

    def register_capabilities(
        self, model: str, capabilities: ModelCapabilities, tokenizer_json: str | None
    ) -> None:
        """What the model's samplers can do; the tokenizer is written only when it changed."""
        pipe = self.r.pipeline(transaction=True)
        if tokenizer_json is not None:
            pipe.set(keys.model_tokenizer(model), tokenizer_json)
        else:
            pipe.delete(keys.model_tokenizer(model))
        pipe.hset(keys.MODEL_CAPABILITIES, model, capabilities.model_dump_json())
        pipe.execute()

    def capabilities(self, model: str) -> ModelCapabilities | None:
        raw = self.r.hget(keys.MODEL_CAPABILITIES, model)
        return ModelCapabilities.model_validate_json(raw) if raw else None

    def tokenizer_json(self, model: str) -> str | None:
        raw = self.r.get(keys.model_tokenizer(model))
        return None if raw is None else str(raw)

    def unregister(self, model: str, worker_id: str) -> None:
        self.r.zrem(keys.model_workers(model), worker_id)

    def live_models(self, *, ttl_s: float) -> list[ModelInfo]:
        """Models with at least one worker whose heartbeat is younger than ``ttl_s``."""
        now = time.time()
        engines = self.r.hgetall(keys.MODELS)
        capabilities = self.r.hgetall(keys.MODEL_CAPABILITIES)
        models = []
        for name in sorted(engines):
            live = int(self.r.zcount(keys.model_workers(str(name)), now - ttl_s, "+inf"))
            if live:
                caps = capabilities.get(name)
                chat = bool(caps and ModelCapabilities.model_validate_json(caps).chat_template)
                models.append(
                    ModelInfo(name=name, engine=engines[name], workers=live, chat_template=chat)
                )
        return models
