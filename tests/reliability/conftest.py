"""Real processes for the reliability suite, started the way `probeval up` starts them.

``rstack`` (one per session: a vLLM sampler takes 30-60 s to start on 2 cores) owns its own
redis-server with AOF on in a data directory, so tests can kill and restart Redis, the sampler and
the scorer. ``api_gateway`` is a gateway alone (with API keys) on another private Redis, with a
fake model registered, for fuzzing, malformed input and load.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from rq.job import Job
from rq.registry import StartedJobRegistry
from rq.serializers import JSONSerializer

from probeval.local import (
    ProcessGroup,
    free_port,
    redis_reachable,
    start_gateway,
    start_redis,
    start_sampler,
    start_scorer,
)
from shared import keys
from shared.queues import rq_connection
from shared.store import Store, connect
from tests.e2e.conftest import CPU_ENGINE_ENV

KEY_A, KEY_B = "reliability-key-a", "reliability-key-b"
AUTH_A = {"Authorization": f"Bearer {KEY_A}"}
AUTH_B = {"Authorization": f"Bearer {KEY_B}"}
API_KEYS = f"team-a:{KEY_A},team-b:{KEY_B}"
MODEL = "tiny"
ABANDON_AFTER_S = 4.0

RELIABILITY_ENV = {
    **CPU_ENGINE_ENV,
    "PROBEVAL_API_KEYS": API_KEYS,
    "PROBEVAL_ABANDON_AFTER_S": str(ABANDON_AFTER_S),
    "PROBEVAL_RECONNECT_MAX_S": "2",
    # Many small chunks, so that kills land in the middle of a job.
    "PROBEVAL_CHUNK_MAX_N": "32",
    "PROBEVAL_CHUNK_DRAWS": "64",
    "PROBEVAL_MAX_ACTIVE_JOBS_PER_TENANT": "1000",
}
TERMINAL = ("succeeded", "failed", "cancelled")


@dataclass
class ReliabilityStack:
    group: ProcessGroup
    redis_dir: Path
    redis_port: int
    base: str
    env: dict[str, str]
    model_path: Path
    samplers: int = 0
    log: list[str] = field(default_factory=list)

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    def client(self, headers: dict[str, str] | None = None) -> httpx.Client:
        return httpx.Client(base_url=self.base, timeout=30, headers=headers or AUTH_A)

    def store(self) -> Store:
        return Store(connect(self.redis_url), retention_s=3600)

    def rq(self) -> redis.Redis:
        return rq_connection(self.redis_url)

    # ---- processes ---------------------------------------------------------------------------

    def proc(self, name: str) -> subprocess.Popen[bytes]:
        return next(p for n, p in self.group.procs if n == name)

    def start_sampler(self) -> None:
        self.samplers += 1
        start_sampler(self.group, str(self.model_path), self.env, name=MODEL, proc_name="sampler")

    def wait_for_sampler(self, timeout_s: float = 300) -> None:
        """Until a sampler process started by this stack is registered and alive."""
        pid = self.proc("sampler").pid
        deadline = time.monotonic() + timeout_s
        r = connect(self.redis_url)
        while time.monotonic() < deadline:
            workers = r.zrangebyscore(keys.model_workers(MODEL), time.time() - 10, "+inf")
            if any(f":{pid}:" in w for w in workers):
                return
            assert self.proc("sampler").poll() is None, self.group.log_tail("sampler")
            time.sleep(0.5)
        raise TimeoutError("sampler not registered:\n" + self.group.log_tail("sampler"))

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Signal the process group of ``name`` (a sampler with its vLLM engine process)."""
        self.group.stop(name, sig=sig, timeout_s=30)

    def start_scorer(self) -> None:
        start_scorer(self.group, self.env, proc_name="scorer")

    def stop_redis(self, sig: int = signal.SIGTERM) -> None:
        self.group.stop("redis", sig=sig, timeout_s=30)

    def start_redis(self) -> None:
        start_redis(self.group, self.redis_dir, self.redis_port)

    # ---- jobs --------------------------------------------------------------------------------

    def submit(self, body: dict[str, Any]) -> str:
        with self.client() as c:
            resp = c.post("/v1/jobs", json=body)
        assert resp.status_code == 202, resp.text
        return str(resp.json()["id"])

    def wait_for_job(self, job_id: str, timeout_s: float = 300) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        view: dict[str, Any] = {}
        with self.client() as c:
            while time.monotonic() < deadline:
                resp = c.get(f"/v1/jobs/{job_id}")
                if resp.status_code == 200:
                    view = resp.json()
                    if view["status"] in TERMINAL:
                        return view
                time.sleep(0.3)
        raise TimeoutError(
            f"job {job_id} not finished: {view}\n--- sampler\n{self.group.log_tail('sampler')}"
            f"\n--- scorer\n{self.group.log_tail('scorer')}"
        )

    def started_chunks(self, queue_name: str) -> list[str]:
        """RQ ids of the chunks in the queue's StartedJobRegistry (no cleanup)."""
        reg = StartedJobRegistry(queue_name, connection=self.rq(), serializer=JSONSerializer)
        return reg.get_job_ids(cleanup=False)

    def rq_job(self, rq_id: str) -> Job:
        return Job.fetch(rq_id, connection=self.rq(), serializer=JSONSerializer)


def assert_exact_draws(stack: ReliabilityStack, job_id: str, prompts: int, n: int) -> None:
    """Exactly n draws and n scores per prompt, at indices 0..n-1, and results for every prompt."""
    r = connect(stack.redis_url)
    for p in range(prompts):
        texts = r.hkeys(keys.job_texts(job_id, p))
        scores = r.hkeys(keys.job_scores(job_id, p))
        assert sorted(int(i) for i in texts) == list(range(n)), f"prompt {p}: draws"
        assert sorted(int(i) for i in scores) == list(range(n)), f"prompt {p}: scores"
    job = r.hgetall(keys.job(job_id))
    # The counters count each index once, however many times a chunk ran.
    assert int(job["samples_generated"]) == prompts * n
    assert int(job["samples_done"]) == prompts * n
    with stack.client() as c:
        results = c.get(f"/v1/jobs/{job_id}/results").json()
        assert [p["n"] for p in results["prompts"]] == [n] * prompts
        for prompt in results["prompts"]:
            page = c.get(
                f"/v1/jobs/{job_id}/samples", params={"prompt_id": prompt["id"], "limit": 1000}
            )
            assert [s["index"] for s in page.json()["samples"]] == list(range(n))


def job_body(prompts: int, n: int, max_tokens: int, *, greedy: bool = False) -> dict[str, Any]:
    return {
        "model": MODEL,
        "prompts": [
            {"id": f"p{i}", "prompt": f"Tell me about the number {i} and", "reference": "a number"}
            for i in range(prompts)
        ],
        "sampling": {"n": n, "temperature": 1.0, "max_tokens": max_tokens},
        "scorer": {"name": "rouge_l_recall"},
        "greedy": greedy,
    }


@pytest.fixture(scope="session")
def rstack(
    tiny_model: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ReliabilityStack]:
    root = tmp_path_factory.mktemp("reliability")
    group = ProcessGroup(root / "logs")
    port = free_port()
    try:
        url = start_redis(group, root / "redis", port)
        env = {**RELIABILITY_ENV, "PROBEVAL_REDIS_URL": url}
        base = start_gateway(group, "127.0.0.1", free_port(), env)
        stack = ReliabilityStack(group, root / "redis", port, base, env, tiny_model)
        stack.start_scorer()
        stack.start_sampler()
        stack.wait_for_sampler()
        yield stack
    finally:
        group.stop()


@dataclass
class ApiGateway:
    base: str
    redis_url: str
    group: ProcessGroup


@pytest.fixture(scope="module")
def api_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiGateway]:
    """A gateway with API keys and a registered fake model (no sampler: jobs stay queued)."""
    root = tmp_path_factory.mktemp("api")
    group = ProcessGroup(root / "logs")
    try:
        url = start_redis(group, root / "redis", free_port(), appendonly=False)
        # The fake model's heartbeat must stay live for the whole module.
        Store(connect(url), retention_s=3600).heartbeat(MODEL, "fake-worker", "fake 0", ttl_s=1e9)
        env = {**RELIABILITY_ENV, "PROBEVAL_REDIS_URL": url, "PROBEVAL_WORKER_TTL_S": "1e9"}
        base = start_gateway(group, "127.0.0.1", free_port(), env)
        yield ApiGateway(base, url, group)
    finally:
        group.stop()


def redis_down(url: str) -> bool:
    return not redis_reachable(url, timeout_s=0.5)


FIGURES_FILE = Path(__file__).resolve().parents[2] / "reports" / "reliability-figures.json"


@pytest.fixture(scope="session")
def figures() -> Iterator[dict[str, Any]]:
    """Measured figures (never asserted), written to reports/reliability-figures.json."""
    found: dict[str, Any] = {}
    yield found
    if found:
        FIGURES_FILE.parent.mkdir(parents=True, exist_ok=True)
        old = json.loads(FIGURES_FILE.read_text()) if FIGURES_FILE.exists() else {}
        FIGURES_FILE.write_text(json.dumps({**old, **found}, indent=2, sort_keys=True) + "\n")
