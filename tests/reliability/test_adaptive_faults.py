"""A kill -9 of the sampler between rounds of a seeded adaptive job changes nothing: the job
reaches the same n_used and decisions per prompt, with the same draws, as an undisturbed run."""

from __future__ import annotations

import time
from typing import Any

import pytest

from shared import keys
from shared.store import connect
from tests.fixtures.reliability import MODEL, ReliabilityStack
from tests.fixtures.stacks import requires_vllm

pytestmark = [pytest.mark.slow, pytest.mark.vllm, requires_vllm]


def adaptive_body() -> dict[str, Any]:
    return {
        "model": MODEL,
        "prompts": [{"id": f"p{i}", "prompt": f"Tell me about the number {i} and"} for i in range(3)],
        "sampling": {"temperature": 1.0, "max_tokens": 8, "seed": 5},
        "scorer": {"name": "regex", "pattern": "e"},
        "greedy": False,
        "alpha": 0.05,
        "stopping": {"target": "mean", "width": 0.3, "min_n": 16, "max_n": 160, "round": 16},
    }  # fmt: skip


def outcome(stack: ReliabilityStack, job_id: str) -> tuple[list[Any], list[dict[str, str]]]:
    with stack.client() as c:
        results = c.get(f"/v1/jobs/{job_id}/results").json()
    r = connect(stack.redis_url)
    seq = [(p["sequential"]["n_used"], p["sequential"]["decision"]) for p in results["prompts"]]
    texts = [r.hgetall(keys.job_texts(job_id, i)) for i in range(3)]
    return seq, texts


def test_kill_9_of_the_sampler_between_rounds(rstack: ReliabilityStack) -> None:
    rstack.wait_for_sampler()  # an earlier test of the session may have restarted it
    reference = rstack.submit(adaptive_body())
    assert rstack.wait_for_job(reference)["status"] == "succeeded"

    job_id = rstack.submit(adaptive_body())
    r = connect(rstack.redis_url)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:  # once a round is scored and more are planned
        done, total, open_ = r.hmget(
            keys.job(job_id), ["samples_done", "samples_total", "prompts_open"]
        )
        if int(done or 0) >= 48 and int(total or 0) > int(done or 0) and int(open_ or 0) > 0:
            break
        time.sleep(0.005)
    else:
        pytest.fail("the job never got between rounds")
    rstack.kill("sampler")  # SIGKILL to its process group: the vLLM engine dies with it
    rstack.start_sampler()
    rstack.wait_for_sampler()
    view = rstack.wait_for_job(job_id)
    assert view["status"] == "succeeded", view
    assert outcome(rstack, job_id) == outcome(rstack, reference)
    # Each index was drawn and counted once, however often a chunk ran.
    ref = r.hgetall(keys.job(reference))
    got = r.hgetall(keys.job(job_id))
    for counter in ("samples_generated", "samples_done", "samples_total", "chunks_total"):
        assert got[counter] == ref[counter], counter
