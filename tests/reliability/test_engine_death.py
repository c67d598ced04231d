"""A dead engine must not swallow the queue (issue 15), with real processes: kill -9 of vLLM's
engine-core process (the sampler's child, not the sampler) in the middle of a job, and a model
whose generation fails the sampler's start-up self-test.

Runs on the session's ``rstack`` before test_faults.py (file order) and leaves a live sampler.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from probeval.local import start_sampler
from probeval.tiny_model import build_tiny_model
from shared import keys
from shared.queues import CHUNK_RETRIES
from shared.store import connect
from tests.fixtures.reliability import MODEL, ReliabilityStack, assert_exact_draws, job_body
from tests.fixtures.stacks import requires_vllm
from workers.sampler.main import EXIT_ENGINE_DIED, EXIT_SELF_TEST_FAILED

pytestmark = [pytest.mark.slow, pytest.mark.vllm, requires_vllm]

SAMPLE_QUEUE = keys.sample_queue(MODEL)


def engine_core(sampler_pid: int) -> psutil.Process:
    """vLLM names its engine-core child process VLLM::EngineCore."""
    cores = [c for c in psutil.Process(sampler_pid).children() if "EngineCore" in c.name()]
    assert len(cores) == 1, [c.name() for c in psutil.Process(sampler_pid).children()]
    return cores[0]


def registered_pids(stack: ReliabilityStack, model: str) -> list[str]:
    return list(connect(stack.redis_url).zrange(keys.model_workers(model), 0, -1))


def chunk_ids(stack: ReliabilityStack, job_id: str) -> list[int]:
    return [c.chunk_id for c in stack.store().chunk_plan(job_id)]


def test_engine_core_kill9_mid_job(rstack: ReliabilityStack, figures: dict[str, Any]) -> None:
    rstack.wait_for_sampler()
    prompts, n = 2, 256
    job_id = rstack.submit(job_body(prompts, n, 64))  # 8 chunks of 64 draws x 64 tokens
    behind = rstack.submit(job_body(1, 64, 8))  # queued behind it
    sampler = rstack.proc("sampler")
    core = engine_core(sampler.pid)
    core_children = core.children(recursive=True)
    r = connect(rstack.redis_url)

    # Freeze the engine core (SIGSTOP), and kill -9 it only once a chunk of the job is running
    # and the sampler has stored nothing for a while: then the sampler is provably waiting on the
    # engine inside that chunk. (Freezing the sampler instead raced under load: the core could
    # finish the chunk's generation before the kill, and the chunk then succeeded.)
    deadline = time.monotonic() + 240
    running: list[str] = []
    while not running:
        assert time.monotonic() < deadline, "no chunk of the job was seen waiting on the engine"
        done, total = r.hmget(keys.job(job_id), ["samples_generated", "samples_total"])
        if int(done or 0) >= 0.3 * int(total):
            core.suspend()
            time.sleep(0.5)
            before = r.hget(keys.job(job_id), "samples_generated")
            chunks = [c for c in rstack.started_chunks(SAMPLE_QUEUE) if c.startswith(job_id)]
            time.sleep(1.0)
            after = r.hget(keys.job(job_id), "samples_generated")
            still = [c for c in rstack.started_chunks(SAMPLE_QUEUE) if c.startswith(job_id)]
            if chunks and chunks == still and before == after:
                running = chunks
            else:
                core.resume()
        time.sleep(0.002)
    at = int(r.hget(keys.job(job_id), "samples_generated")) / (prompts * n)
    core.kill()
    killed_at = time.monotonic()

    assert sampler.wait(timeout=30) == EXIT_ENGINE_DIED, rstack.group.log_tail("sampler")
    exited_s = time.monotonic() - killed_at
    log = rstack.group.log_tail("sampler", lines=200)
    assert "was killed by SIGKILL" in log, log
    assert not [w for w in registered_pids(rstack, MODEL) if f":{sampler.pid}:" in w]
    with rstack.client() as c:
        assert MODEL not in [m["name"] for m in c.get("/v1/models").json()["models"]]
    # The chunk in hand went back on the queue at once, as one failed attempt; nothing else
    # was touched: the job and the job behind it are not failed, no other chunk spent anything.
    (killed,) = running
    chunk = rstack.rq_job(killed)
    assert chunk.get_status() == "queued"
    assert chunk.retries_left == CHUNK_RETRIES - 1
    assert rstack.store().get_status(job_id).value == "running"
    assert rstack.store().get_status(behind).value == "queued"
    for job, ids in ((job_id, chunk_ids(rstack, job_id)), (behind, chunk_ids(rstack, behind))):
        for c in ids:
            rq_id = f"{job}-{c}-sample"
            if rq_id != killed:
                assert rstack.rq_job(rq_id).retries_left in (None, CHUNK_RETRIES), rq_id
    # vLLM's engine worker processes died with their core (no orphan holds the memory).
    assert not [p for p in core_children if p.is_running() and p.status() != "zombie"]

    rstack.kill("sampler")  # forget the exited process
    rstack.start_sampler()
    for job, (p, k) in ((job_id, (prompts, n)), (behind, (1, 64))):
        view = rstack.wait_for_job(job)
        assert view["status"] == "succeeded", view
        assert_exact_draws(rstack, job, p, k)
    # No chunk failed more than once.
    for c in chunk_ids(rstack, job_id):
        assert rstack.rq_job(f"{job_id}-{c}-sample").retries_left in (
            None,
            CHUNK_RETRIES,
            CHUNK_RETRIES - 1,
        )
    figures["engine_core_kill9"] = {
        "killed_at_progress": round(at, 3),
        "sampler_exit_s": round(exited_s, 2),
    }


def test_a_model_that_fails_its_self_test_is_never_registered(
    rstack: ReliabilityStack, tmp_path: Path, figures: dict[str, Any]
) -> None:
    """dtype auto on the CPU build tries bfloat16, then float32 (after closing the failed
    engine, in the same process); the model fails both, so the sampler exits with the message."""
    broken = build_tiny_model(tmp_path / "broken", model_vocab_size=256)
    env = {k: v for k, v in rstack.env.items() if k != "PROBEVAL_ENGINE_DTYPE"}
    started = time.monotonic()
    proc = start_sampler(rstack.group, str(broken), env, name="broken", proc_name="broken")
    try:
        code = proc.wait(timeout=600)
    except subprocess.TimeoutExpired:
        rstack.group.stop("broken")
        raise
    log = rstack.group.log_tail("broken", lines=400)
    rstack.group.stop("broken")
    assert code == EXIT_SELF_TEST_FAILED, log
    assert "model 'broken'" in log and "failed the sampler's start-up self-test" in log, log
    assert "dtype bfloat16:" in log and "dtype float32:" in log, log
    assert "float32 failed too" in log, log
    r = connect(rstack.redis_url)
    assert not r.hexists(keys.MODELS, "broken")
    assert r.zcard(keys.model_workers("broken")) == 0
    figures["self_test_failure"] = {"seconds_to_exit": round(time.monotonic() - started, 1)}
