"""`probeval up --model PATH` with the default engine settings on the repo's tiny model (head size
64, the case that SIGILLed in bfloat16 on an Intel AMX host), and `up` restarting a sampler that
was killed in the middle of a job: the job still completes with exactly n draws per prompt."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import psutil
import pytest

from probeval.local import free_port
from shared import keys
from shared.store import connect
from tests.fixtures.stacks import requires_vllm

pytestmark = [pytest.mark.slow, pytest.mark.vllm, requires_vllm]


class Output:
    """Lines of a child's stdout, read on a thread so the test never blocks on them."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        assert proc.stdout is not None
        stream = proc.stdout
        threading.Thread(target=lambda: self.lines.extend(stream), daemon=True).start()

    @property
    def text(self) -> str:
        return "".join(self.lines)

    def wait_for(self, pattern: str, proc: subprocess.Popen[str], timeout_s: float) -> str:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            found = re.search(pattern, self.text)
            if found:
                return found[0]
            assert proc.poll() is None, f"probeval up exited:\n{self.text}"
            time.sleep(0.2)
        raise TimeoutError(f"no {pattern!r} in:\n{self.text}")


def sampler_of(up_pid: int) -> psutil.Process:
    # RQ retitles its worker process: "rq:worker:...: Processing workers.sampler.tasks..." while it
    # runs a chunk, "...: Listening on probeval-sample-<model>" between chunks (no "sampler").
    (sampler,) = [
        p
        for p in psutil.Process(up_pid).children()
        if re.search(r"sampler|probeval-sample-", " ".join(p.cmdline()))
    ]
    return sampler


def test_up_with_default_settings_restarts_a_killed_sampler(
    tiny_model: Path, tmp_path: Path
) -> None:
    port = free_port()
    # Default engine settings (no PROBEVAL_ENGINE_* at all). A short abandon time only makes the
    # killed sampler's chunk come back sooner than the default 60 s.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROBEVAL_")}
    env |= {"PROBEVAL_REDIS_URL": "redis://127.0.0.1:1/0", "PROBEVAL_ABANDON_AFTER_S": "4"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "probeval", "up", "--model", str(tiny_model), "--name", "tiny",
         "--port", str(port), "--state-dir", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )  # fmt: skip
    out = Output(proc)
    base = f"http://127.0.0.1:{port}"
    try:
        out.wait_for("ready:", proc, 600)
        redis_port = re.search(r"started redis-server on 127\.0\.0\.1:(\d+)", out.text)
        assert redis_port, out.text
        r = connect(f"redis://127.0.0.1:{redis_port[1]}/0")
        (model,) = httpx.get(f"{base}/v1/models").json()["models"]
        # The dtype the CPU rule chose is shown (bfloat16 if its self-test passed, else float32).
        assert re.search(r"\(cpu, (bfloat16|float32)\)", model["engine"]), model

        prompts, n = 2, 256
        body = {
            "model": "tiny",
            "prompts": [{"id": f"p{i}", "prompt": f"Say {i}", "reference": "x"} for i in range(2)],
            "sampling": {"n": n, "temperature": 1.0, "max_tokens": 48},
            "scorer": {"name": "rouge_l_recall"},
            "greedy": False,
        }
        job_id = httpx.post(f"{base}/v1/jobs", json=body).json()["id"]
        deadline = time.monotonic() + 300
        while int(r.hget(keys.job(job_id), "samples_generated") or 0) < 0.2 * prompts * n:
            assert time.monotonic() < deadline, out.text
            time.sleep(0.01)
        sampler = sampler_of(proc.pid)
        os.killpg(sampler.pid, signal.SIGKILL)  # the sampler and its engine

        out.wait_for(r"sampler was killed by SIGKILL after \d+ s.*restarting it in 1 s", proc, 30)
        out.wait_for(r"restarted sampler \(restart 1, pid \d+\)", proc, 30)
        deadline = time.monotonic() + 600
        while (view := httpx.get(f"{base}/v1/jobs/{job_id}").json())["status"] not in (
            "succeeded",
            "failed",
        ):
            assert time.monotonic() < deadline, out.text
            assert proc.poll() is None, out.text
            time.sleep(0.5)
        assert view["status"] == "succeeded", view
        assert view["progress"] == {"samples_done": prompts * n, "samples_total": prompts * n}
        for p in range(prompts):
            assert sorted(int(i) for i in r.hkeys(keys.job_texts(job_id, p))) == list(range(n))
        assert sampler_of(proc.pid).pid != sampler.pid
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out.text
