"""Adaptive jobs: each prompt drawn in rounds, its next round enqueued only while it is open.

A chunk holds one round of each of its prompts (sampled, then scored, like any chunk). When the
scorer has stored a chunk's scores it calls ``advance_chunk``: each prompt's stream state
(``shared.stats.stopping``) is read from Redis, its round's scores folded in (O(round), never
O(draws so far)) and the results written back by one Lua compare-and-set on the streams' draw
counts, which in the same step records each prompt's stop and records the next rounds of the
prompts still open as ONE chunk in the job's plan (``chunks_total`` and the planned draws grow
with it), so engine batches stay large. Only then is the recorded chunk enqueued.

Crash safety: a scorer killed anywhere in here is re-run by RQ (abandoned-job detection). The
re-run finds the compare-and-set already applied (the draw counts moved on) and only enqueues
the recorded next chunk if it is not in the job's enqueued set; a round is never folded in
twice, never lost, and no round is planned past a stop. Round boundaries and chunk ids depend
only on the spec (and the chunk_max_n recorded at submission), and seeds only on slice starts,
so a seeded job run twice, or interrupted by crashes, draws the same texts and stops each
prompt at the same n_used with the same decision. Exception: with a binding ``max_draws``, which
prompt gets the last rounds depends on the order rounds finish.
"""

from __future__ import annotations

import math

import numpy as np
import redis

from shared import keys
from shared.config import Settings
from shared.errors import InvalidInput, LimitExceeded
from shared.planning import round_slices
from shared.queues import enqueue_sampling
from shared.schemas import ChunkTask, JobCreate, StoppingSpec
from shared.sequential import check_stopping, rule_from_spec
from shared.stats.stopping import StoppingRule, StreamState, advance, start_stream
from shared.store import JobRecord, Store

# KEYS: streams hash, job hash, chunks hash. ARGV: [1] prompts in the scored chunk (m),
# [2] next chunk id, [3] next chunk JSON up to its slices' "[", [4] the JSON after their "]",
# [5] max_draws ('' = none), [6] retention (s); then 8 fields per prompt: prompt field, draws
# expected (the round's start), new state JSON, new draw count, '1' if the state is a stop, the
# next round's slices as JSON list items, the next round's draws, the state as stopped by
# max_draws. All prompts or none: a chunk's rounds are folded in by one call, so if any prompt's
# draw count has moved on the whole chunk was applied before (a retry or duplicate).
# Returns {0}: already applied; {1, prompts in the next chunk (0: none recorded), prompts
# closed (by the rule or by max_draws)}. An ended job folds the rounds in but plans nothing.
_ADVANCE_CHUNK = """
local m = tonumber(ARGV[1])
for j = 0, m - 1 do
  local o = 6 + 8 * j
  local n = tonumber(redis.call('HGET', KEYS[1], ARGV[o + 1] .. ':n') or '0')
  if n ~= tonumber(ARGV[o + 2]) then return {0} end
end
redis.call('EXPIRE', KEYS[1], ARGV[6])
local status = redis.call('HGET', KEYS[2], 'status')
local active = status == 'queued' or status == 'running'
local planned = tonumber(redis.call('HGET', KEYS[2], 'samples_total') or '0')
local parts, draws, closed = {}, 0, 0
for j = 0, m - 1 do
  local o = 6 + 8 * j
  local field = ARGV[o + 1]
  local state = ARGV[o + 3]
  if ARGV[o + 5] == '1' then
    closed = closed + 1
  elseif active and ARGV[5] ~= ''
      and planned + draws + tonumber(ARGV[o + 7]) > tonumber(ARGV[5]) then
    state = ARGV[o + 8]
    closed = closed + 1
  elseif active then
    parts[#parts + 1] = ARGV[o + 6]
    draws = draws + tonumber(ARGV[o + 7])
  end
  redis.call('HSET', KEYS[1], field, state, field .. ':n', ARGV[o + 4])
end
if closed > 0 then redis.call('HINCRBY', KEYS[2], 'prompts_open', -closed) end
if #parts > 0 then
  redis.call('HSET', KEYS[3], ARGV[2], ARGV[3] .. table.concat(parts, ',') .. ARGV[4])
  redis.call('HINCRBY', KEYS[2], 'chunks_total', 1)
  redis.call('HINCRBY', KEYS[2], 'samples_total', draws)
end
return {1, #parts, closed}
"""


def rule_of(spec: JobCreate) -> StoppingRule:
    """The stopping rule of an adaptive job; ValueError for a fixed-n job."""
    if spec.stopping is None:
        raise ValueError("not an adaptive job")
    return rule_from_spec(spec.stopping)


def later_rounds(rule: StoppingRule) -> int:
    """How many rounds can follow the first one."""
    return math.ceil((rule.max_n - rule.first_end()) / rule.round)


def successor_chunk_id(spec: JobCreate, chunk_id: int) -> int:
    """The id of the chunk that holds the next rounds of every prompt of chunk ``chunk_id`` that
    is still open.

    First-plan chunks are numbered 0 .. prompts (the greedy chunk and at most one chunk per
    prompt); each is the head of a lane whose prompts stay together round after round (they all
    start at draw 0 and move on by ``round``, so they are always at the same draw). A lane's
    later rounds follow, ``later_rounds`` ids per lane: a fixed id per round, so a repeated
    enqueue of a round is the same RQ job, and engine batches stay as large as the lane's open
    prompts allow instead of one small chunk per prompt."""
    per_lane = later_rounds(rule_of(spec))
    base = len(spec.prompts) + 1
    if chunk_id < base:
        return base + chunk_id * per_lane
    lane, k = divmod(chunk_id - base, per_lane)
    return base + lane * per_lane + k + 1


def first_round_draws(spec: JobCreate) -> int:
    """Draws the first plan of an adaptive job generates, over all its prompts."""
    return len(spec.prompts) * rule_of(spec).first_end()


def check_adaptive(spec: JobCreate, settings: Settings) -> None:
    """Rules of a job's stopping options and max_draws; errors name the field."""
    if spec.stopping is None:
        if spec.max_draws is not None:
            raise InvalidInput(
                "max_draws: only for adaptive jobs; give a stopping rule or leave it out",
                param="max_draws",
            )
        return
    stopping: StoppingSpec = spec.stopping
    check_stopping(stopping, max_n_limit=settings.max_n)
    if spec.sampling.n != stopping.max_n:
        raise InvalidInput(
            f"stopping.max_n: {stopping.max_n} differs from sampling.n = {spec.sampling.n}; "
            "with a stopping rule, max_n takes the place of sampling.n (leave sampling.n out)",
            param="stopping.max_n",
        )
    first = first_round_draws(spec)
    if spec.max_draws is not None and spec.max_draws < first:
        raise InvalidInput(
            f"max_draws: {spec.max_draws} is less than the first rounds need "
            f"({len(spec.prompts)} prompts x {rule_of(spec).first_end()} = {first}); "
            f"allowed: {first}..{settings.max_draws_per_job}",
            param="max_draws",
        )
    if spec.max_draws is not None and spec.max_draws > settings.max_draws_per_job:
        raise LimitExceeded(
            f"max_draws: {spec.max_draws} is over the limit of {settings.max_draws_per_job} "
            "draws per job",
            param="max_draws",
        )


def most_draws(spec: JobCreate) -> int:
    """The most draws a job can use (for the per-job draws limit)."""
    draws = len(spec.prompts) * spec.sampling.n
    return min(draws, spec.max_draws) if spec.max_draws is not None else draws


def _enqueue_recorded(
    store: Store, rq: redis.Redis, settings: Settings, job: JobRecord, cid: int
) -> None:
    """Put a recorded round on the sampling queue unless that was already done."""
    if store.r.sismember(keys.job_chunks_enqueued(job.id), str(cid)):
        return
    raw = store.r.hget(keys.job_chunks(job.id), str(cid))
    if raw is None:
        return  # not recorded: the prompt stopped, or the job ended first
    enqueue_sampling(rq, job.spec.model, ChunkTask.model_validate_json(raw), settings)
    pipe = store.r.pipeline(transaction=True)
    pipe.sadd(keys.job_chunks_enqueued(job.id), str(cid))
    pipe.expire(keys.job_chunks_enqueued(job.id), store.retention_s)
    pipe.execute()


def round_spans(task: ChunkTask) -> dict[int, tuple[int, int]]:
    """Per prompt, the draws ``start .. end - 1`` of the one round this chunk holds for it."""
    spans: dict[int, tuple[int, int]] = {}
    for sl in task.slices:
        lo, hi = spans.get(sl.prompt_index, (sl.start, sl.start + sl.count))
        spans[sl.prompt_index] = (min(lo, sl.start), max(hi, sl.start + sl.count))
    return spans


def read_streams(store: Store, job: JobRecord, prompts: list[int]) -> list[StreamState]:
    """The prompts' stored stream states (a fresh one before a prompt's first round)."""
    raws = store.r.hmget(keys.job_streams(job.id), [str(i) for i in prompts])
    rule = rule_of(job.spec)
    return [StreamState.from_json(str(raw)) if raw else start_stream(rule) for raw in raws]


def chunk_json_ends(job_id: str, chunk_id: int) -> tuple[str, str]:
    """A chunk's JSON before and after the items of its slices list (pydantic's own dump)."""
    text = ChunkTask(job_id=job_id, chunk_id=chunk_id, slices=[]).model_dump_json()
    head, tail = text.split('"slices":[]')
    return head + '"slices":[', "]" + tail


def advance_chunk(
    store: Store, rq: redis.Redis, settings: Settings, job: JobRecord, task: ChunkTask
) -> str:
    """Fold the scored rounds of one chunk into their prompts' streams; stop those that are
    done and record the open ones' next rounds as ONE chunk, then enqueue it. Idempotent (see
    the module docstring). Returns what happened, for the task's log."""
    rule = rule_of(job.spec)
    spans = round_spans(task)
    prompts = sorted(spans)
    states = read_streams(store, job, prompts)
    successor = successor_chunk_id(job.spec, task.chunk_id)
    if any(st.n != spans[i][0] for i, st in zip(prompts, states, strict=True)):
        # Folded in before a crash (all or nothing): make sure the successor is queued.
        _enqueue_recorded(store, rq, settings, job, successor)
        return "already applied"
    chunk_max_n = job_chunk_max_n(store, job)
    args: list[str | int] = []
    for i, state in zip(prompts, states, strict=True):
        start, end = spans[i]
        values = store.scores(job.id, i, list(range(start, end)))
        if any(v is None for v in values):
            raise RuntimeError(f"round {start}..{end - 1} of prompt {i} is not all scored")
        new = advance(state, rule, np.array(values, dtype=np.float64), job.spec.alpha)
        next_end = rule.next_end(new.n)
        slices = [] if new.stopped else round_slices(i, new.n, next_end, chunk_max_n)
        budget_stop = StreamState(
            n=new.n,
            mixture=new.mixture,
            betting=new.betting,
            decision="undecided",
            reason="max_draws",
        )
        args += [
            str(i),
            start,
            new.to_json(),
            new.n,
            "1" if new.stopped else "0",
            ",".join(sl.model_dump_json() for sl in slices),
            next_end - new.n,
            budget_stop.to_json(),
        ]
    head, tail = chunk_json_ends(job.id, successor)
    result = store.r.register_script(_ADVANCE_CHUNK)(
        keys=[keys.job_streams(job.id), keys.job(job.id), keys.job_chunks(job.id)],
        args=[
            len(prompts),
            successor,
            head,
            tail,
            "" if job.spec.max_draws is None else job.spec.max_draws,
            store.retention_s,
            *args,
        ],
    )
    applied, *counts = (int(v) for v in result)
    if not applied:
        return "already applied"
    if counts[0] > 0:
        _enqueue_recorded(store, rq, settings, job, successor)
    return f"{counts[0]} prompts go on, {counts[1]} stopped"


def job_chunk_max_n(store: Store, job: JobRecord) -> int:
    """The slice size recorded at submission: later rounds must be sliced the same way."""
    raw = store.r.hget(keys.job(job.id), "chunk_max_n")
    if raw is None:
        raise RuntimeError(f"adaptive job {job.id} has no recorded chunk_max_n")
    return int(raw)


def finished(store: Store, job_id: str) -> bool:
    """Every prompt stopped and every recorded chunk scored: the job can be finalised."""
    total, open_ = store.r.hmget(keys.job(job_id), ["chunks_total", "prompts_open"])
    scored = int(store.r.scard(keys.job_chunks_scored(job_id)))
    return open_ is not None and int(open_) <= 0 and total is not None and scored >= int(total)


def stream_states(store: Store, job: JobRecord) -> dict[int, StreamState]:
    """Every prompt's stream state (a prompt never folded in has none)."""
    raw = store.r.hgetall(keys.job_streams(job.id))
    return {
        int(k): StreamState.from_json(str(v)) for k, v in raw.items() if not str(k).endswith(":n")
    }
