"""Crash safety and Redis restarts with real processes: kill -9 of the sampler (at three points of
a job) and of the scorer in the middle of a chunk, a chunk that kills its worker every time, a
Redis stop and restart mid-job, and a SIGTERM during a chunk.

The tests share one stack (``rstack``) and run in file order; each leaves a live sampler behind,
except the SIGTERM test, which runs last and starts the replacement without waiting for it.
"""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import pytest
from rq.registry import StartedJobRegistry
from rq.serializers import JSONSerializer

from shared import keys
from shared.config import Settings
from shared.queues import CHUNK_RETRIES, _enqueue, score_queue
from shared.schemas import ChunkSlice, ChunkTask, JobCreate
from shared.store import connect
from tests.fixtures.reliability import (
    ABANDON_AFTER_S,
    AUTH_A,
    MODEL,
    ReliabilityStack,
    assert_exact_draws,
    job_body,
    redis_down,
)
from tests.fixtures.stacks import requires_vllm

pytestmark = [pytest.mark.slow, pytest.mark.vllm, requires_vllm]

SAMPLE_QUEUE = keys.sample_queue(MODEL)
# Detection bound: 1.25 x abandon_after_s plus RQ's whole-second scores, plus polling slack.
DETECTION_BOUND_S = 1.25 * ABANDON_AFTER_S + 1 + 2


def snapshot(r: Any, job_id: str) -> dict[str, Any]:
    """The value of every key of a job. (Not DUMP: an AOF reload may re-encode a hash with its
    fields in another order, which changes the DUMP but not the data.)"""
    read = {
        "hash": r.hgetall,
        "string": r.get,
        "set": lambda k: sorted(r.smembers(k)),
        "zset": lambda k: r.zrange(k, 0, -1, withscores=True),
        "list": lambda k: r.lrange(k, 0, -1),
    }
    names = [keys.job(job_id), *r.scan_iter(keys.job_keys_pattern(job_id))]
    return {k: read[r.type(k)](k) for k in names}


def progress(stack: ReliabilityStack, job_id: str, field: str) -> float:
    job = connect(stack.redis_url).hmget(keys.job(job_id), [field, "samples_total"])
    return int(job[0] or 0) / int(job[1])


def kill_mid_chunk(
    stack: ReliabilityStack, proc_name: str, queue: str, job_id: str, field: str, fraction: float
) -> tuple[list[str], float]:
    """SIGKILL ``proc_name`` (its whole process group) while it runs a chunk of ``job_id``, once
    the job's ``field`` counter has reached ``fraction`` of its draws. The process is first
    frozen (SIGSTOP) and the started registry read, so the kill provably lands inside a chunk;
    frozen between two chunks, it is let go (SIGCONT) and caught at the next one."""
    r = connect(stack.redis_url)
    registry = StartedJobRegistry(queue, connection=stack.rq(), serializer=JSONSerializer)
    pgid = stack.proc(proc_name).pid
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        done, total, status = r.hmget(keys.job(job_id), [field, "samples_total", "status"])
        assert status not in ("succeeded", "failed"), f"job ended before the kill at {fraction}"
        if int(done or 0) >= fraction * int(total):
            os.killpg(pgid, signal.SIGSTOP)
            running = [c for c in registry.get_job_ids(cleanup=False) if c.startswith(job_id)]
            if running:
                os.killpg(pgid, signal.SIGKILL)
                killed_at = time.monotonic()
                stack.kill(proc_name)  # reap it and forget it
                return running, killed_at
            os.killpg(pgid, signal.SIGCONT)
        time.sleep(0.002)
    raise TimeoutError(f"no chunk of {job_id} ran past {fraction:.0%} in {proc_name}")


def wait_requeued(
    stack: ReliabilityStack, queue: str, rq_ids: list[str], killed_at: float
) -> float:
    """Seconds from the kill until every killed chunk left the started registry, re-queued with
    one attempt used."""
    deadline = killed_at + 120
    while time.monotonic() < deadline:
        if not set(rq_ids) & set(stack.started_chunks(queue)):
            detected = time.monotonic() - killed_at
            for rq_id in rq_ids:
                job = stack.rq_job(rq_id)
                assert job.retries_left == CHUNK_RETRIES - 1, (rq_id, job.retries_left)
                assert job.get_status() in ("queued", "started", "finished"), job.get_status()
            return detected
        time.sleep(0.1)
    raise TimeoutError(f"killed chunks {rq_ids} were never re-queued")


@pytest.mark.parametrize("fraction", [0.15, 0.5, 0.8])
def test_sampler_kill9_mid_chunk(
    rstack: ReliabilityStack, fraction: float, figures: dict[str, Any]
) -> None:
    rstack.wait_for_sampler()
    prompts, n = 2, 256
    job_id = rstack.submit(job_body(prompts, n, 64))  # 8 chunks of 64 draws x 64 tokens
    rq_ids, killed_at = kill_mid_chunk(
        rstack, "sampler", SAMPLE_QUEUE, job_id, "samples_generated", fraction
    )
    at = progress(rstack, job_id, "samples_generated")
    rstack.start_sampler()  # it loads while the scorer's watchdog detects the abandoned chunk
    detected = wait_requeued(rstack, SAMPLE_QUEUE, rq_ids, killed_at)
    assert detected <= DETECTION_BOUND_S
    view = rstack.wait_for_job(job_id)
    assert view["status"] == "succeeded", view
    assert view["progress"] == {"samples_done": prompts * n, "samples_total": prompts * n}
    assert_exact_draws(rstack, job_id, prompts, n)
    figures[f"sampler_kill9_at_{fraction}"] = {
        "killed_at_progress": round(at, 3),
        "detection_s": round(detected, 2),
        "abandon_after_s": ABANDON_AFTER_S,
    }


def test_scorer_kill9_mid_chunk(rstack: ReliabilityStack, figures: dict[str, Any]) -> None:
    rstack.wait_for_sampler()
    prompts, n = 3, 256
    job_id = rstack.submit(job_body(prompts, n, 16, greedy=True))
    rq_ids, killed_at = kill_mid_chunk(
        rstack, "scorer", keys.SCORE_QUEUE, job_id, "samples_done", 0.3
    )
    at = progress(rstack, job_id, "samples_done")
    rstack.start_scorer()
    detected = wait_requeued(rstack, keys.SCORE_QUEUE, rq_ids, killed_at)
    assert detected <= DETECTION_BOUND_S
    view = rstack.wait_for_job(job_id)
    assert view["status"] == "succeeded", view
    assert_exact_draws(rstack, job_id, prompts, n)
    figures["scorer_kill9"] = {
        "killed_at_progress": round(at, 3),
        "detection_s": round(detected, 2),
    }


def test_poison_chunk_fails_the_job_after_retries(
    rstack: ReliabilityStack, figures: dict[str, Any]
) -> None:
    """A chunk that kills every worker that runs it is attempted 1 + CHUNK_RETRIES times, then
    the job fails with a stored error; it never loops."""
    rstack.wait_for_sampler()  # its watchdog detects the chunks the dead scorers abandon
    store = rstack.store()
    spec = JobCreate.model_validate(job_body(1, 4, 4))
    one_slice = [ChunkSlice(prompt_index=0, start=0, count=4)]
    task = ChunkTask(job_id="poison" + "0" * 26, chunk_id=0, slices=one_slice)
    store.create_job(task.job_id, spec, [task], tenant="team-a")
    settings = Settings(redis_url=rstack.redis_url)
    poison = "tests.reliability.poison.kill_worker"
    _enqueue(score_queue(rstack.rq()), poison, task, settings, "score")
    started = time.monotonic()
    deaths = 0
    while store.get_status(task.job_id).value not in ("failed", "succeeded"):
        assert time.monotonic() - started < 180, "poison chunk still looping"
        scorer = rstack.proc("scorer")
        if scorer.poll() is not None:
            assert scorer.returncode == -signal.SIGKILL
            deaths += 1
            rstack.kill("scorer")
            rstack.start_scorer()
        time.sleep(0.2)
    with rstack.client(AUTH_A) as c:
        view = c.get(f"/v1/jobs/{task.job_id}").json()
    assert view["status"] == "failed"
    assert view["error"]["code"] == "chunk_failed"
    assert "AbandonedJobError" in view["error"]["message"]
    # One death per attempt; the last may still be being reaped.
    deadline = time.monotonic() + 10
    while deaths < 1 + CHUNK_RETRIES and time.monotonic() < deadline:
        if rstack.proc("scorer").poll() is not None:
            deaths += 1
            rstack.kill("scorer")
            rstack.start_scorer()
        time.sleep(0.2)
    assert deaths == 1 + CHUNK_RETRIES
    time.sleep(ABANDON_AFTER_S * 2)
    assert rstack.proc("scorer").poll() is None  # nothing re-ran it
    figures["poison_chunk"] = {
        "attempts": deaths,
        "seconds_to_failed_job": round(time.monotonic() - started, 1),
    }


def test_redis_restart_mid_job(rstack: ReliabilityStack, figures: dict[str, Any]) -> None:
    rstack.wait_for_sampler()
    # A finished job whose stored data must survive the restart unchanged.
    done_id = rstack.submit(job_body(1, 64, 8))
    assert rstack.wait_for_job(done_id)["status"] == "succeeded"
    r = connect(rstack.redis_url)
    before = snapshot(r, done_id)

    prompts, n = 2, 256
    job_id = rstack.submit(job_body(prompts, n, 32))
    while progress(rstack, job_id, "samples_generated") < 0.3:
        time.sleep(0.02)
    rstack.stop_redis(signal.SIGTERM)
    stopped_at = time.monotonic()
    assert redis_down(rstack.redis_url)
    with rstack.client() as c:
        resp = c.get(f"/v1/jobs/{job_id}")
        assert resp.status_code == 503, resp.text
        assert resp.json()["error"]["code"] == "unavailable"
        assert c.get("/readyz").status_code == 503
    time.sleep(3)  # the workers see the outage
    rstack.start_redis()
    down_s = time.monotonic() - stopped_at
    with rstack.client() as c:
        deadline = time.monotonic() + 30
        while c.get(f"/v1/jobs/{job_id}").status_code != 200:
            assert time.monotonic() < deadline, "gateway did not recover"
            time.sleep(0.2)
        gateway_recovered_s = time.monotonic() - stopped_at
    view = rstack.wait_for_job(job_id)
    assert view["status"] == "succeeded", view
    assert_exact_draws(rstack, job_id, prompts, n)
    for stack_proc in ("sampler", "scorer", "gateway"):
        assert rstack.proc(stack_proc).poll() is None, rstack.group.log_tail(stack_proc)
    r = connect(rstack.redis_url)
    after = snapshot(r, done_id)
    assert after == before
    figures["redis_restart"] = {
        "redis_down_s": round(down_s, 1),
        "gateway_back_after_s": round(gateway_recovered_s, 1),
        "job_seconds_total": round(time.monotonic() - stopped_at, 1),
    }


def test_sigterm_lets_the_running_chunk_finish(rstack: ReliabilityStack) -> None:
    """SIGTERM to the sampler (what Kubernetes sends to the container's main process) while it
    runs the only chunk of a job: the chunk completes, is not retried, and the worker exits 0."""
    rstack.wait_for_sampler()
    job_id = rstack.submit(job_body(1, 64, 128))  # one chunk of 64 x 128 tokens
    while not [c for c in rstack.started_chunks(SAMPLE_QUEUE) if c.startswith(job_id)]:
        time.sleep(0.005)
    sampler = rstack.proc("sampler")
    os.kill(sampler.pid, signal.SIGTERM)
    assert sampler.wait(timeout=120) == 0, rstack.group.log_tail("sampler")
    rstack.kill("sampler")
    chunk = rstack.rq_job(keys.rq_chunk_id(job_id, 0, "sample"))
    assert chunk.get_status() == "finished"
    assert chunk.retries_left == CHUNK_RETRIES
    view = rstack.wait_for_job(job_id)
    assert view["status"] == "succeeded", view
    assert_exact_draws(rstack, job_id, 1, 64)
    rstack.start_sampler()  # for later tests; they wait for it
