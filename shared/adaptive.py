"""Adaptive jobs: each prompt drawn in rounds, its next round enqueued only while it is open.

A round is one chunk (sampled, then scored, like any chunk). When the scorer has stored a
round's scores it calls ``advance_round``: the prompt's stream state (``shared.stats.stopping``)
is read from Redis, the round's scores folded in (O(round), never O(draws so far)) and the
result written back by one Lua compare-and-set on the stream's draw count, which in the same
step either records the prompt's stop or records the next round's chunk in the job's plan
(``chunks_total`` and the planned draws grow with it). Only then is the recorded chunk enqueued.

Crash safety: a scorer killed anywhere in here is re-run by RQ (abandoned-job detection). The
re-run finds the compare-and-set already applied (the draw count moved on) and only enqueues
the recorded next round if it is not in the job's enqueued set; a round is never folded in
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

# KEYS: streams hash, job hash, chunks hash. ARGV: [1] prompt field, [2] draws expected (the
# round's start), [3] new state JSON, [4] new draw count, [5] '1' if the state is a stop,
# [6] next chunk id, [7] next chunk JSON, [8] next round's draws, [9] max_draws ('' = none),
# [10] the state as stopped by max_draws, [11] retention (s).
# Returns 0: already applied (or not this round's turn); 1: next round recorded; 2: stopped by
# the rule; 3: folded in, job no longer active (nothing planned); 4: stopped by max_draws.
_ADVANCE = """
local n = tonumber(redis.call('HGET', KEYS[1], ARGV[1] .. ':n') or '0')
if n ~= tonumber(ARGV[2]) then return 0 end
redis.call('EXPIRE', KEYS[1], ARGV[11])
if ARGV[5] == '1' then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[3], ARGV[1] .. ':n', ARGV[4])
  redis.call('HINCRBY', KEYS[2], 'prompts_open', -1)
  return 2
end
local status = redis.call('HGET', KEYS[2], 'status')
if status ~= 'queued' and status ~= 'running' then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[3], ARGV[1] .. ':n', ARGV[4])
  return 3
end
if ARGV[9] ~= '' then
  local planned = tonumber(redis.call('HGET', KEYS[2], 'samples_total') or '0')
  if planned + tonumber(ARGV[8]) > tonumber(ARGV[9]) then
    redis.call('HSET', KEYS[1], ARGV[1], ARGV[10], ARGV[1] .. ':n', ARGV[4])
    redis.call('HINCRBY', KEYS[2], 'prompts_open', -1)
    return 4
  end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3], ARGV[1] .. ':n', ARGV[4])
redis.call('HSET', KEYS[3], ARGV[6], ARGV[7])
redis.call('HINCRBY', KEYS[2], 'chunks_total', 1)
redis.call('HINCRBY', KEYS[2], 'samples_total', tonumber(ARGV[8]))
return 1
"""


def rule_of(spec: JobCreate) -> StoppingRule:
    """The stopping rule of an adaptive job; ValueError for a fixed-n job."""
    if spec.stopping is None:
        raise ValueError("not an adaptive job")
    return rule_from_spec(spec.stopping)


def later_rounds(rule: StoppingRule) -> int:
    """How many rounds can follow the first one."""
    return math.ceil((rule.max_n - rule.first_end()) / rule.round)


def round_chunk_id(spec: JobCreate, prompt_index: int, start: int) -> int:
    """The chunk id of the round of ``prompt_index`` that starts at draw ``start`` (> 0).

    First-plan chunks are numbered 0 .. prompts (the greedy chunk and at most one chunk per
    prompt); later rounds follow, ``later_rounds`` ids per prompt: a fixed id per round, so a
    repeated enqueue of a round is the same RQ job."""
    rule = rule_of(spec)
    k = (start - rule.first_end()) // rule.round  # 0 for the second round
    return len(spec.prompts) + 1 + prompt_index * later_rounds(rule) + k


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


def read_stream(store: Store, job: JobRecord, prompt_index: int) -> StreamState:
    """A prompt's stored stream state, or a fresh one before its first round is folded in."""
    raw = store.r.hget(keys.job_streams(job.id), str(prompt_index))
    return StreamState.from_json(str(raw)) if raw else start_stream(rule_of(job.spec))


def advance_round(
    store: Store,
    rq: redis.Redis,
    settings: Settings,
    job: JobRecord,
    prompt_index: int,
    start: int,
    end: int,
) -> str:
    """Fold the scored round ``start .. end - 1`` of one prompt into its stream; stop it or
    record and enqueue its next round. Idempotent (see the module docstring). Returns what
    happened, for the task's log."""
    rule = rule_of(job.spec)
    state = read_stream(store, job, prompt_index)
    if state.n != start:
        if state.n == end and not state.stopped:
            # This round was folded in before a crash: make sure its successor is queued.
            _enqueue_recorded(store, rq, settings, job, round_chunk_id(job.spec, prompt_index, end))
        return "already applied"
    values = store.scores(job.id, prompt_index, list(range(start, end)))
    if any(v is None for v in values):
        raise RuntimeError(f"round {start}..{end - 1} of prompt {prompt_index} is not all scored")
    new = advance(state, rule, np.array(values, dtype=np.float64), job.spec.alpha)
    next_end = rule.next_end(new.n)
    cid = round_chunk_id(job.spec, prompt_index, new.n) if not new.stopped else -1
    chunk = ChunkTask(
        job_id=job.id,
        chunk_id=cid,
        slices=round_slices(prompt_index, new.n, next_end, job_chunk_max_n(store, job)),
    ) if not new.stopped else None  # fmt: skip
    budget_stop = StreamState(
        n=new.n, mixture=new.mixture, betting=new.betting, decision="undecided", reason="max_draws"
    )
    outcome = int(
        store.r.register_script(_ADVANCE)(
            keys=[keys.job_streams(job.id), keys.job(job.id), keys.job_chunks(job.id)],
            args=[
                str(prompt_index),
                start,
                new.to_json(),
                new.n,
                "1" if new.stopped else "0",
                cid,
                chunk.model_dump_json() if chunk else "",
                next_end - new.n,
                "" if job.spec.max_draws is None else job.spec.max_draws,
                budget_stop.to_json(),
                store.retention_s,
            ],
        )
    )
    if outcome == 1:
        _enqueue_recorded(store, rq, settings, job, cid)
    return {0: "already applied", 1: "next round", 2: "stopped", 3: "job ended", 4: "budget"}[
        outcome
    ]


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
