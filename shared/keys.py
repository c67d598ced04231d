"""Every Redis key and RQ queue name probeval uses, spelled here and nowhere else."""

from __future__ import annotations

PREFIX = "probeval"

# RQ queues. RQ keeps a queue ``name`` in the Redis list ``rq:queue:<name>`` (what KEDA and the
# metrics read for queue depth).
SCORE_QUEUE = "probeval-score"
# Webhook deliveries: served by scorer processes, ahead of their scoring chunks.
CALLBACK_QUEUE = "probeval-callbacks"
# Moving a finished job's draws to the archive (shared/archive.py): served by scorer processes,
# after their scoring chunks (an archive can wait; a running job's chunks should not).
ARCHIVE_QUEUE = "probeval-archive"
_SAMPLE_QUEUE_PREFIX = "probeval-sample-"
RQ_QUEUE_LIST_PREFIX = "rq:queue:"


def sample_queue(model: str) -> str:
    """The RQ queue that samplers serving ``model`` listen on."""
    return f"{_SAMPLE_QUEUE_PREFIX}{model}"


def rq_queue_list(queue_name: str) -> str:
    """The Redis list in which RQ holds a queue's pending job ids."""
    return f"{RQ_QUEUE_LIST_PREFIX}{queue_name}"


# The judge stage runs only for jobs scored by a judge model (workers/sampler/judging.py).
CHUNK_STAGES = ("sample", "judge", "score")


def rq_chunk_id(job_id: str, chunk_id: int, stage: str) -> str:
    """The RQ job id of one stage (``sample``, ``judge`` or ``score``) of a chunk: one id per (job, chunk,
    stage), so a duplicate enqueue replaces, never adds, work. RQ keys its records by it."""
    return f"{job_id}-{chunk_id}-{stage}"


def rq_callback_id(job_id: str) -> str:
    """The RQ job id of a job's webhook delivery (one per job)."""
    return f"{job_id}-callback"


def rq_archive_id(job_id: str) -> str:
    """The RQ job id of a job's archiving task (one per job)."""
    return f"{job_id}-archive"


# Lease that lets one scorer at a time sweep expired archives (shared/archive_retention.py).
ARCHIVE_SWEEP_LEASE = f"{PREFIX}:archive:sweep-lease"

# Jobs
JOBS_INDEX = f"{PREFIX}:jobs"  # sorted set: job id -> created_at


def job(job_id: str) -> str:
    """Hash: the job's record (spec JSON, status, progress counters, timestamps, error)."""
    return f"{PREFIX}:job:{job_id}"


def job_chunks(job_id: str) -> str:
    """Hash: chunk id -> ChunkTask JSON (the job's chunk plan)."""
    return f"{PREFIX}:job:{job_id}:chunks"


def job_chunks_scored(job_id: str) -> str:
    """Set of chunk ids whose draws are all scored (the last one to land finalises the job)."""
    return f"{PREFIX}:job:{job_id}:chunks-scored"


def job_texts(job_id: str, prompt_index: int) -> str:
    """Hash: sample index -> generated text, for one prompt. HSETNX keeps writes idempotent."""
    return f"{PREFIX}:job:{job_id}:p:{prompt_index}:texts"


def job_scores(job_id: str, prompt_index: int) -> str:
    """Hash: sample index -> score, for one prompt."""
    return f"{PREFIX}:job:{job_id}:p:{prompt_index}:scores"


def job_greedy_texts(job_id: str) -> str:
    """Hash: prompt index -> the greedy (temperature 0) generation, before scoring."""
    return f"{PREFIX}:job:{job_id}:greedy-texts"


def job_greedy(job_id: str) -> str:
    """Hash: prompt index -> scored greedy result (GreedyResult JSON)."""
    return f"{PREFIX}:job:{job_id}:greedy"


def job_streams(job_id: str) -> str:
    """Hash: prompt index -> its adaptive stream state (StreamState JSON: draws folded in, the
    confidence sequence's state, the stop). Changed only by compare-and-set on the draw count."""
    return f"{PREFIX}:job:{job_id}:streams"


def job_chunks_enqueued(job_id: str) -> str:
    """Set of adaptive round chunk ids already put on the sampling queue (for crash recovery:
    a retried transition re-enqueues a recorded round only if it is not in here)."""
    return f"{PREFIX}:job:{job_id}:chunks-enqueued"


def job_rendered_prompts(job_id: str) -> str:
    """Hash: prompt index -> the prompt text the model was given (chat prompts, rendered)."""
    return f"{PREFIX}:job:{job_id}:rendered-prompts"


def job_results(job_id: str) -> str:
    """String: the JobResults JSON, written once when the job finishes."""
    return f"{PREFIX}:job:{job_id}:results"


def job_keys_pattern(job_id: str) -> str:
    """Every key of one job but its record ``job(job_id)`` (for deletion)."""
    return f"{PREFIX}:job:{job_id}:*"


# Worker registry
MODELS = f"{PREFIX}:models"  # hash: model name -> engine description
# Hash: model name -> ModelCapabilities JSON (chat template, tokenizer hash), set by its samplers.
MODEL_CAPABILITIES = f"{PREFIX}:model-capabilities"


def model_tokenizer(model: str) -> str:
    """String: the model's tokenizer as Hugging Face tokenizer.json (checks of judge labels)."""
    return f"{PREFIX}:model:{model}:tokenizer"


def model_workers(model: str) -> str:
    """Sorted set: worker id -> last heartbeat (unix seconds) of samplers serving ``model``."""
    return f"{PREFIX}:model:{model}:workers"


# Tenants
def tenant_jobs(tenant: str) -> str:
    """Sorted set: job id -> created_at of every job of the tenant (GET /v1/jobs, newest first)."""
    return f"{PREFIX}:tenant:{tenant}:jobs"


def tenant_active_jobs(tenant: str) -> str:
    """Sorted set: the tenant's queued or running job ids -> the time their record expires (the
    active-jobs limit; shared/job_record.py). Named apart from the plain set ``...:active`` that
    held them before, so that a Redis holding that older key never meets a type error."""
    return f"{PREFIX}:tenant:{tenant}:active-jobs"


# ---------------------------------------------------------------------------------------------
# Metrics (issue 6): counters the workers add to and the gateway's GET /metrics reads
# (shared/metrics.py). Cluster-wide totals, kept in Redis so that they outlive worker processes.
# ---------------------------------------------------------------------------------------------
METRICS_DRAWS_GENERATED = f"{PREFIX}:metrics:draws-generated"  # hash: model -> draws generated
METRICS_TOKENS_GENERATED = f"{PREFIX}:metrics:tokens-generated"  # hash: model -> tokens generated
METRICS_DRAWS_SCORED = f"{PREFIX}:metrics:draws-scored"  # hash: model -> draws scored
# Hash: model -> seconds samplers spent inside engine.generate (float): draws / seconds is the
# measured per-sampler throughput the planner (POST /v1/plan) prices draws with.
METRICS_ENGINE_SECONDS = f"{PREFIX}:metrics:engine-seconds"
# Hash: job status -> jobs. Active statuses (queued, running) are current counts; terminal ones
# (succeeded, failed, cancelled) only ever grow: jobs that reached them.
METRICS_JOBS_BY_STATUS = f"{PREFIX}:metrics:jobs-by-status"
