"""Running probeval's processes on one machine: a local Redis, the gateway and the workers.

Used by `probeval up`, `probeval demo` and the end-to-end tests, so the tests start the
services exactly the way users do.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path

import redis

from shared.config import get_settings
from shared.store import Store, connect


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def redis_reachable(url: str, timeout_s: float = 1.0) -> bool:
    try:
        return bool(
            redis.Redis.from_url(
                url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
            ).ping()
        )
    except (redis.RedisError, OSError, ValueError):
        return False


def wait_until(
    check: Callable[[], bool],
    *,
    timeout_s: float,
    what: str,
    proc: subprocess.Popen[bytes] | None = None,
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what}: process exited with code {proc.returncode}")
        time.sleep(0.2)
    raise TimeoutError(f"{what}: not ready after {timeout_s:.0f}s")


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        return False


class ProcessGroup:
    """Processes started together and stopped together (SIGTERM, then SIGKILL), newest first."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        log_dir.mkdir(parents=True, exist_ok=True)
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(
        self, name: str, argv: Sequence[str], env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(
            list(argv),
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            # Own process group: Ctrl-C in the terminal reaches the parent only, which then
            # stops children in order (vLLM's engine subprocess goes with its sampler).
            start_new_session=True,
        )
        log.close()
        self.procs.append((name, proc))
        return proc

    def stop(
        self, name: str | None = None, *, sig: int = signal.SIGTERM, timeout_s: float = 20.0
    ) -> None:
        targets = [(n, p) for n, p in reversed(self.procs) if name is None or n == name]
        for _, proc in targets:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, sig)
        deadline = time.monotonic() + timeout_s
        for _, proc in targets:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        self.procs = [(n, p) for n, p in self.procs if (n, p) not in targets]

    def log_tail(self, name: str, lines: int = 40) -> str:
        path = self.log_dir / f"{name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def start_redis(group: ProcessGroup, data_dir: Path, port: int, *, appendonly: bool = True) -> str:
    """A private redis-server on loopback; AOF on so a restart keeps queued and running jobs."""
    server = shutil.which("redis-server")
    if server is None:
        raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
    data_dir.mkdir(parents=True, exist_ok=True)
    argv = [
        server,
        "--bind",
        "127.0.0.1",
        "--port",
        str(port),
        "--dir",
        str(data_dir),
        "--save",
        "",
        "--appendonly",
        "yes" if appendonly else "no",
        "--appendfsync",
        "everysec",
        "--protected-mode",
        "yes",
    ]
    proc = group.start("redis", argv)
    url = f"redis://127.0.0.1:{port}/0"
    wait_until(lambda: redis_reachable(url), timeout_s=20, what="redis-server", proc=proc)
    return url


def probeval_argv(*args: str) -> list[str]:
    """Run a probeval subcommand with the same interpreter as this process."""
    return [sys.executable, "-m", "probeval", *args]


def start_gateway(group: ProcessGroup, host: str, port: int, env: dict[str, str]) -> str:
    proc = group.start(
        "gateway", probeval_argv("gateway", "--host", host, "--port", str(port)), env
    )
    base = f"http://{host}:{port}"
    wait_until(lambda: http_ok(f"{base}/healthz"), timeout_s=60, what="gateway", proc=proc)
    return base


def start_sampler(
    group: ProcessGroup,
    model_path: str,
    env: dict[str, str],
    *,
    name: str | None = None,
    proc_name: str = "sampler",
) -> subprocess.Popen[bytes]:
    argv = probeval_argv("worker", "sampler", "--model", model_path)
    if name:
        argv += ["--name", name]
    return group.start(proc_name, argv, env)


def start_scorer(
    group: ProcessGroup, env: dict[str, str], *, proc_name: str = "scorer"
) -> subprocess.Popen[bytes]:
    return group.start(proc_name, probeval_argv("worker", "scorer"), env)


def say(message: str, *, prefix: str = "probeval") -> None:
    print(f"[{prefix}] {message}", flush=True)


class LocalStack:
    """The processes of a local deployment; a context manager that always stops them."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.group = ProcessGroup(state_dir / "logs")
        self.env: dict[str, str] = {}

    def __enter__(self) -> LocalStack:
        return self

    def __exit__(self, *exc: object) -> None:
        say("stopping")
        self.group.stop()

    def redis(self) -> str:
        """REDIS_URL (or PROBEVAL_REDIS_URL) if set and reachable, else a local redis-server."""
        wanted = os.environ.get("PROBEVAL_REDIS_URL") or os.environ.get("REDIS_URL")
        if wanted and redis_reachable(wanted):
            say(f"using Redis at {wanted}")
            url = wanted
        else:
            if wanted:
                say(f"Redis at {wanted} does not answer; starting a local one")
            port = free_port()
            url = start_redis(self.group, self.state_dir / "redis", port)
            say(f"started redis-server on 127.0.0.1:{port} (AOF in {self.state_dir / 'redis'})")
        self.env["PROBEVAL_REDIS_URL"] = url
        return url

    def services(self, model_path: str, name: str | None, host: str, port: int) -> str:
        base = start_gateway(self.group, host, port, self.env)
        say(f"gateway on {base} (OpenAPI: {base}/docs)")
        start_scorer(self.group, self.env)
        start_sampler(self.group, model_path, self.env, name=name)
        return base

    def wait_for_model(self, store_url: str, model: str, timeout_s: float = 300.0) -> None:
        store = Store(connect(store_url), retention_s=60)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if any(m.name == model for m in store.live_models(ttl_s=get_settings().worker_ttl_s)):
                return
            self.check_alive()
            time.sleep(0.5)
        raise TimeoutError(f"the sampler did not register model {model!r} in {timeout_s:.0f}s")

    def check_alive(self) -> None:
        for name, proc in self.group.procs:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"{name} exited with code {proc.returncode}; last lines of its log:\n"
                    + self.group.log_tail(name)
                )
