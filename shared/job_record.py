"""The job record hash and the one atomic step that admits a job. No I/O: ``shared.store.Store``
(workers, tests) and ``shared.async_store.AsyncStore`` (the gateway's submit and poll) both run
this script and read these fields, so the two clients cannot disagree about a record.

The tenant's active jobs are a sorted set (``keys.tenant_active_jobs``) of job id -> the unix time
at which the job's record expires. A job enters it in the step that creates it and leaves it in
the compare-and-set that gives it a terminal status (``Store.set_status``), on deletion, or when
its record expires (``ZREMRANGEBYSCORE`` up to now drops those). Its cardinality is therefore the
exact number of queued or running jobs, read in O(log n) with no per-job reads, and the quota
check and the reservation happen in one script: two racing submits cannot both take the last slot.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from shared import keys
from shared.errors import NotFound
from shared.queues import StagedChunks
from shared.schemas import (
    AdaptiveProgress,
    CallbackDelivery,
    CallbackState,
    ChunkTask,
    ErrorInfo,
    JobCreate,
    JobStatus,
    JobView,
    Progress,
)

# KEYS: 1 record, 2 chunk plan, 3 tenant's active jobs, 4 model's worker heartbeats, 5 jobs
# index, 6 job counts by status (the creation step of shared.metrics.record_status_change, kept
# here so that the count moves in the same step as the job appears), 7 tenant's job listing.
# ARGV: 1 job id, 2 now, 3 heartbeats younger than this are live ('' = do not check),
# 4 most active jobs of the tenant ('' = no limit), 5 retention (s), 6 time the record expires,
# 7 number of record fields F, 8 number of chunks C, 9 number of keys to copy K (a rescore's
# source draws), 10 the source's record when there are keys to copy ('' otherwise): a source
# archived meanwhile (shared/archive.py) has no draw keys left to copy, 11 the chunk records'
# template (shared/rq_records.py, JSON; '' when none), then F field/value pairs, C chunk
# id/ChunkTask JSON pairs, K source/destination key pairs; with a template, the queue's name, the
# time stamp, the number of chunk records R and R (RQ id, description, job data) triples, from
# which the script writes each chunk's RQ record and queue push as Queue.enqueue_many does; then
# any commands RQ staged itself (shared.queues.stage_chunks), each as its argument count and its
# arguments. They run in this step, so a job is never stored without its chunks on the queue,
# nor enqueued when refused.
# Returns {'ok', active jobs now}, {'quota', active jobs}, {'no_model', 0} or {'archived', 0};
# only 'ok' writes.
# unpack() is bounded by Lua's C stack (~8000 values): the plan is written 500 chunks at a time.
ADMIT_JOB = """
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', ARGV[2])
local active = redis.call('ZCARD', KEYS[3])
if ARGV[4] ~= '' and active >= tonumber(ARGV[4]) then return {'quota', active} end
if ARGV[3] ~= '' and redis.call('ZCOUNT', KEYS[4], ARGV[3], '+inf') == 0 then
  return {'no_model', 0}
end
if ARGV[10] ~= '' and redis.call('HEXISTS', ARGV[10], 'archive') == 1 then
  return {'archived', 0}
end
local fields, chunks, copies = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
local i = 12
redis.call('HSET', KEYS[1], unpack(ARGV, i, i + 2 * fields - 1))
i = i + 2 * fields
local last = i + 2 * chunks - 1
while i <= last do
  local stop = math.min(i + 999, last)
  redis.call('HSET', KEYS[2], unpack(ARGV, i, stop))
  i = stop + 1
end
for _ = 1, copies do
  redis.call('COPY', ARGV[i], ARGV[i + 1])
  redis.call('EXPIRE', ARGV[i + 1], ARGV[5])
  i = i + 2
end
redis.call('EXPIRE', KEYS[1], ARGV[5])
redis.call('EXPIRE', KEYS[2], ARGV[5])
redis.call('ZADD', KEYS[3], ARGV[6], ARGV[1])
redis.call('ZADD', KEYS[5], ARGV[2], ARGV[1])
redis.call('HINCRBY', KEYS[6], 'queued', 1)
-- The listing index's entries older than the retention point at expired records.
redis.call('ZADD', KEYS[7], ARGV[2], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[7], '-inf', tonumber(ARGV[2]) - tonumber(ARGV[5]))
if ARGV[11] ~= '' then
  -- RQ's commands for enqueue_many, in its order: the queue into the set of queues, then per
  -- chunk its status, its record, its push.
  local t = cjson.decode(ARGV[11])
  local origin, stamp, records = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
  i = i + 3
  local queue = t.queue_prefix .. origin
  local record, at = t.fields, t.at
  record[at.created_at], record[at.enqueued_at], record[at.origin] = stamp, stamp, origin
  redis.call('SADD', t.queues, queue)
  for _ = 1, records do
    local job = t.job_prefix .. ARGV[i]
    record[at.description], record[at.data] = ARGV[i + 1], ARGV[i + 2]
    redis.call('HSET', job, unpack(t.status))
    redis.call('HSET', job, unpack(record))
    redis.call('RPUSH', queue, ARGV[i])
    i = i + 3
  end
end
while i <= #ARGV do
  local n = tonumber(ARGV[i])
  redis.call(unpack(ARGV, i + 1, i + n))
  i = i + n + 1
end
return {'ok', active + 1}
"""

# Move the job to ARGV[1] only if its current status is one of ARGV[6..]; returns the old
# status, or false when the job is missing or in another status. ARGV[2] = '1' when the new
# status is terminal: the job then leaves its tenant's active jobs (the sorted set named in the
# record, see shared/job_record.py), in the same step, so the quota count never drifts.
SET_STATUS = """
local old = redis.call('HGET', KEYS[1], 'status')
if not old then return false end
for i = 6, #ARGV do
  if ARGV[i] == old then
    redis.call('HSET', KEYS[1], 'status', ARGV[1], 'updated_at', ARGV[4])
    if ARGV[5] ~= '' then redis.call('HSET', KEYS[1], 'error', ARGV[5]) end
    if ARGV[2] == '1' then
      local active = redis.call('HGET', KEYS[1], 'active_index')
      if active then redis.call('ZREM', active, ARGV[3]) end
    end
    return old
  end
end
return false
"""

# Record field naming the tenant's active-jobs sorted set, which SET_STATUS leaves (spelled in
# the script too).
ACTIVE_INDEX_FIELD = "active_index"
# Record fields of the webhook delivery (written by shared/callbacks.py).
CALLBACK_FIELDS = (
    "callback_url",
    "callback_state",
    "callback_attempts",
    "callback_error",
    "callback_delivered_at",
)


def callback_state(fields: dict[str, str | None]) -> CallbackState | None:
    """The delivery state from a job record's fields; None for a job without a callback."""
    url = fields.get("callback_url")
    if not url:
        return None
    delivered = fields.get("callback_delivered_at")
    return CallbackState(
        url=url,
        state=CallbackDelivery(fields.get("callback_state") or CallbackDelivery.none.value),
        attempts=int(fields.get("callback_attempts") or 0),
        last_error=fields.get("callback_error") or None,
        delivered_at=float(delivered) if delivered else None,
    )


# What GET /v1/jobs/{id} reads (one HMGET; the spec, possibly megabytes, is not among them).
VIEW_FIELDS = (
    "status",
    "created_at",
    "updated_at",
    "samples_done",
    "samples_total",
    "tenant",
    "error",
    "model",
    "source_job",
    "prompts",
    "prompts_open",
    *CALLBACK_FIELDS,
)


class Verdict(StrEnum):
    """What the admission script answered (its first return value)."""

    ok = "ok"
    quota = "quota"
    no_model = "no_model"
    archived = "archived"  # a rescore's source was archived: its draws come from the archive


@dataclass(frozen=True)
class Admission:
    """What the admission step decided; ``active`` counts the tenant's active jobs (with this
    one when accepted)."""

    verdict: Verdict
    active: int

    @property
    def accepted(self) -> bool:
        return self.verdict is Verdict.ok


def admit_keys(job_id: str, model: str, tenant: str) -> list[str]:
    """The Redis keys the admission script touches, in the order its KEYS[] expects."""
    return [
        keys.job(job_id),
        keys.job_chunks(job_id),
        keys.tenant_active_jobs(tenant),
        keys.model_workers(model),
        keys.JOBS_INDEX,
        keys.METRICS_JOBS_BY_STATUS,
        keys.tenant_jobs(tenant),
    ]


def admit_args(
    job_id: str,
    spec: JobCreate,
    chunks: Sequence[ChunkTask],
    *,
    tenant: str,
    now: float,
    retention_s: int,
    max_active: int | None,
    live_after: float | None,
    source_job: str | None = None,
    chunk_max_n: int | None = None,
    enqueue: StagedChunks | None = None,
    copy_source: bool = True,
) -> list[Any]:
    """The admission script's ARGV: the job record, its chunks, the copies and queue commands."""
    samples_total = len(spec.prompts) * spec.sampling.n
    if spec.stopping is not None:
        if chunk_max_n is None:
            raise ValueError("an adaptive job needs the chunk_max_n it was planned with")
        samples_total = sum(sl.count for c in chunks if not c.greedy for sl in c.slices)
    record: dict[str, str | int] = {
        "spec": spec.model_dump_json(),
        "status": JobStatus.queued.value,
        "created_at": repr(now),
        "updated_at": repr(now),
        "samples_done": 0,
        # A rescore job's draws exist already (copied from its source): none to generate.
        "samples_generated": 0 if source_job is None else samples_total,
        "samples_total": samples_total,
        "chunks_total": len(chunks),
        "tenant": tenant,
        # Read by GET /v1/jobs and GET /v1/jobs/{id} without parsing the (possibly large) spec.
        "model": spec.model,
        "prompts": len(spec.prompts),
        ACTIVE_INDEX_FIELD: keys.tenant_active_jobs(tenant),
        "error": "",
    }
    if spec.callback_url:
        record["callback_url"] = spec.callback_url
    if spec.stopping is not None and chunk_max_n is not None:
        record["prompts_open"] = len(spec.prompts)
        record["chunk_max_n"] = chunk_max_n
    copies: list[str] = []
    if source_job is not None:
        record["source_job"] = source_job
    if source_job is not None and copy_source:
        for index in range(len(spec.prompts)):
            copies += [keys.job_texts(source_job, index), keys.job_texts(job_id, index)]
        copies += [keys.job_greedy_texts(source_job), keys.job_greedy_texts(job_id)]
        # What the policy saw, for a judge's {prompt} and the results' rendered_prompt.
        copies += [keys.job_rendered_prompts(source_job), keys.job_rendered_prompts(job_id)]
    args: list[Any] = [
        job_id,
        repr(now),
        "" if live_after is None else repr(live_after),
        "" if max_active is None else max_active,
        retention_s,
        repr(now + retention_s),
        len(record),
        len(chunks),
        len(copies) // 2,
        keys.job(source_job) if source_job is not None and copy_source else "",
        enqueue.template if enqueue is not None else "",
    ]
    for name, value in record.items():
        args += [name, value]
    for chunk in chunks:
        args += [chunk.chunk_id, chunk.model_dump_json()]
    args += copies
    if enqueue is not None:
        if enqueue.template:
            args += enqueue.args
        for command, _options in enqueue.commands:  # options only shape parsing the reply
            args += [len(command), *command]
    return args


def parse_admission(reply: Sequence[str | bytes | int]) -> Admission:
    """The admission script's reply as a verdict and the tenant's active-job count."""
    verdict = reply[0].decode() if isinstance(reply[0], bytes) else str(reply[0])
    return Admission(Verdict(verdict), int(reply[1]))


def view_from_fields(
    job_id: str,
    values: Sequence[str | None],
    *,
    tenant: str | None,
    spec: JobCreate | None = None,
) -> JobView:
    """The JobView from the ``VIEW_FIELDS`` values; NotFound when the record is missing or
    belongs to another tenant (no existence leak). ``spec``, for a record written before the
    model and the prompt count had fields of their own, supplies them."""
    raw = dict(zip(VIEW_FIELDS, values, strict=True))
    if raw["status"] is None or (tenant is not None and (raw["tenant"] or "") != tenant):
        raise NotFound(f"no job with id {job_id!r}", param="id")
    adaptive = None
    if raw["prompts_open"] is not None:
        prompts = len(spec.prompts) if spec is not None else int(raw["prompts"] or 0)
        still = int(raw["prompts_open"])
        adaptive = AdaptiveProgress(prompts_open=still, prompts_stopped=prompts - still)
    return JobView(
        id=job_id,
        model=spec.model if spec is not None else str(raw["model"]),
        status=JobStatus(raw["status"]),
        progress=Progress(
            samples_done=int(raw["samples_done"] or 0), samples_total=int(raw["samples_total"] or 0)
        ),
        adaptive=adaptive,
        created_at=float(raw["created_at"] or 0.0),
        updated_at=float(raw["updated_at"] or 0.0),
        error=ErrorInfo.model_validate_json(raw["error"]) if raw["error"] else None,
        source_job=raw["source_job"] or None,
        callback=callback_state(raw),
    )
