"""Real processes: redis-server, the gateway under uvicorn, a vLLM sampler and a scorer, each
started the way `probeval up` starts them."""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from probeval.local import (
    ProcessGroup,
    free_port,
    start_gateway,
    start_redis,
    start_sampler,
    start_scorer,
)

requires_vllm = pytest.mark.skipif(
    importlib.util.find_spec("vllm") is None, reason="needs vllm (pip install '.[cpu-sampler]')"
)

# The CPU build of vLLM reserves this share of host memory for the KV cache; its default
# (0.9) does not fit next to the other processes.
CPU_ENGINE_ENV = {
    "PROBEVAL_ENGINE_MEMORY_FRACTION": "0.1",
    "PROBEVAL_ENGINE_ENFORCE_EAGER": "true",
    "PROBEVAL_ENGINE_DTYPE": "float32",
    "PROBEVAL_HEARTBEAT_S": "2",
    "PROBEVAL_WORKER_TTL_S": "10",
}


@dataclass
class Stack:
    group: ProcessGroup
    base: str
    env: dict[str, str]
    model_path: Path
    model: str

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base, timeout=30)

    def wait_for_model(self, timeout_s: float = 300) -> None:
        deadline = time.monotonic() + timeout_s
        with self.client() as c:
            while time.monotonic() < deadline:
                if any(m["name"] == self.model for m in c.get("/v1/models").json()["models"]):
                    return
                self.assert_alive()
                time.sleep(1)
        raise TimeoutError("sampler never registered:\n" + self.group.log_tail("sampler"))

    def assert_alive(self) -> None:
        for name, proc in self.group.procs:
            assert proc.poll() is None, f"{name} died:\n{self.group.log_tail(name)}"

    def wait_for_job(self, job_id: str, timeout_s: float = 600) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        with self.client() as c:
            while time.monotonic() < deadline:
                view = c.get(f"/v1/jobs/{job_id}").json()
                if view["status"] in ("succeeded", "failed", "cancelled"):
                    return dict(view)
                time.sleep(0.5)
        raise TimeoutError(f"job {job_id} not finished: {view}\n{self.group.log_tail('sampler')}")


@pytest.fixture(scope="session")
def stack(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One stack for the session (a vLLM start costs 30-60 s here), on its own redis-server so
    that tests flushing the shared test Redis never touch it."""
    root = tmp_path_factory.mktemp("e2e")
    group = ProcessGroup(root / "logs")
    try:
        redis_url = start_redis(group, root / "redis", free_port())
        env = {"PROBEVAL_REDIS_URL": redis_url, **CPU_ENGINE_ENV}
        base = start_gateway(group, "127.0.0.1", free_port(), env)
        start_scorer(group, env)
        start_sampler(group, str(tiny_model), env, name="tiny")
        s = Stack(group, base, env, tiny_model, "tiny")
        s.wait_for_model()
        yield s
    finally:
        group.stop()
