"""`probeval up` runs everything in the foreground and stops all of it on Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from probeval.local import free_port, redis_reachable
from tests.fixtures.stacks import CPU_ENGINE_ENV, requires_vllm

pytestmark = [pytest.mark.slow, pytest.mark.vllm, requires_vllm]


def test_up_serves_then_stops_everything_on_ctrl_c(tiny_model: Path, tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, **CPU_ENGINE_ENV, "PROBEVAL_REDIS_URL": "redis://127.0.0.1:1/0"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "probeval", "up", "--model", str(tiny_model), "--name", "tiny",
         "--port", str(port), "--state-dir", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )  # fmt: skip
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            assert line, "probeval up exited early:\n" + "".join(lines)
            lines.append(line)
            if "ready:" in line:
                break
        out = "".join(lines)
        # REDIS_URL did not answer, so up started its own Redis and said so.
        started = re.search(r"started redis-server on 127\.0\.0\.1:(\d+)", out)
        assert started, out
        redis_url = f"redis://127.0.0.1:{started[1]}/0"
        models = httpx.get(f"http://127.0.0.1:{port}/v1/models").json()["models"]
        assert [m["name"] for m in models] == ["tiny"]

        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out + rest
    assert "stopping" in rest
    assert not redis_reachable(redis_url)
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
