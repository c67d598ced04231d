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
from dataclasses import dataclass
from pathlib import Path

import redis

from shared.config import get_settings
from shared.store import Store, connect


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (another process may take it before it is bound)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def redis_reachable(url: str, timeout_s: float = 1.0) -> bool:
    """Whether a Redis at ``url`` answers a ping within ``timeout_s``."""
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
    """Poll ``check`` until true; raise if ``proc`` exits or ``timeout_s`` passes first."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what}: process exited with code {proc.returncode}")
        time.sleep(0.2)
    raise TimeoutError(f"{what}: not ready after {timeout_s:.0f}s")


def http_ok(url: str) -> bool:
    """Whether a GET of ``url`` answers 200 within 2 s."""
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

    def forget(self, proc: subprocess.Popen[bytes]) -> None:
        """Drop an exited process (reaped) from the group."""
        proc.wait()
        self.procs = [(n, p) for n, p in self.procs if p is not proc]

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
    """Start a gateway process and wait for its /healthz; its base URL."""
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
    """Start a vLLM sampler process serving ``model_path`` (it registers once loaded)."""
    argv = probeval_argv("worker", "sampler", "--model", model_path)
    if name:
        argv += ["--name", name]
    return group.start(proc_name, argv, env)


def start_scorer(
    group: ProcessGroup, env: dict[str, str], *, proc_name: str = "scorer"
) -> subprocess.Popen[bytes]:
    """Start a scorer worker process."""
    return group.start(proc_name, probeval_argv("worker", "scorer"), env)


def say(message: str, *, prefix: str = "probeval") -> None:
    """A progress line on stdout, tagged with the command's name."""
    print(f"[{prefix}] {message}", flush=True)


def describe_exit(code: int | None) -> str:
    """A process's exit status in words: its code, or the signal that killed it."""
    if code is not None and code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


# Supervision of the workers `probeval up` and `probeval demo` start: a worker that exits is
# restarted after RESTART_BACKOFF_S (doubling per fast failure in a row, at most
# RESTART_BACKOFF_MAX_S). A run shorter than FAST_FAILURE_S is a fast failure (a sampler that
# cannot load or self-test its model takes ~30-90 s per try on a CPU); MAX_FAST_FAILURES of
# them in a row stop the stack with the worker's last log lines.
RESTART_BACKOFF_S = 1.0
RESTART_BACKOFF_MAX_S = 30.0
FAST_FAILURE_S = 300.0
MAX_FAST_FAILURES = 3


@dataclass
class Supervised:
    """A worker process that is restarted when it exits."""

    name: str
    start: Callable[[], subprocess.Popen[bytes]]
    proc: subprocess.Popen[bytes]
    started_at: float
    fast_failures: int = 0
    restarts: int = 0
    restart_at: float | None = None


class LocalStack:
    """The processes of a local deployment; a context manager that always stops them.

    Redis and the gateway must stay up (``check_alive`` raises if one exits); the sampler and
    the scorer are supervised: restarted with back-off when they exit (module constants).
    """

    def __init__(
        self,
        state_dir: Path,
        *,
        backoff_s: float = RESTART_BACKOFF_S,
        fast_failure_s: float = FAST_FAILURE_S,
        max_fast_failures: int = MAX_FAST_FAILURES,
    ) -> None:
        self.state_dir = state_dir
        self.group = ProcessGroup(state_dir / "logs")
        # Finished jobs move to Parquet under the state directory unless the environment
        # names another archive (PROBEVAL_ARCHIVE_URL, shared/archive.py).
        self.env: dict[str, str] = {}
        if not os.environ.get("PROBEVAL_ARCHIVE_URL"):
            self.env["PROBEVAL_ARCHIVE_URL"] = str((state_dir / "archive").resolve())
        self.workers: dict[str, Supervised] = {}
        self.backoff_s = backoff_s
        self.fast_failure_s = fast_failure_s
        self.max_fast_failures = max_fast_failures

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
        self.supervise("scorer", lambda: start_scorer(self.group, self.env))
        self.supervise(
            "sampler", lambda: start_sampler(self.group, model_path, self.env, name=name)
        )
        return base

    def supervise(self, name: str, start: Callable[[], subprocess.Popen[bytes]]) -> None:
        """Start a worker with ``start`` (which must add it to ``self.group`` as ``name``) and
        restart it the same way whenever ``check_alive`` finds it exited."""
        self.workers[name] = Supervised(name, start, start(), time.monotonic())

    def wait_for_model(self, store_url: str, model: str, timeout_s: float = 900.0) -> None:
        store = Store(connect(store_url), retention_s=60)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if any(m.name == model for m in store.live_models(ttl_s=get_settings().worker_ttl_s)):
                return
            self.check_alive()
            time.sleep(0.5)
        raise TimeoutError(f"the sampler did not register model {model!r} in {timeout_s:.0f}s")

    def check_alive(self) -> None:
        """Call often: restarts exited workers when their back-off is over; raises
        ``RuntimeError`` (with the last lines of its log) when Redis or the gateway exited or a
        worker failed fast ``max_fast_failures`` times in a row."""
        supervised = {id(w.proc) for w in self.workers.values()}
        for name, proc in self.group.procs:
            if id(proc) not in supervised and proc.poll() is not None:
                raise RuntimeError(
                    f"{name} {describe_exit(proc.returncode)}; last lines of its log:\n"
                    + self.group.log_tail(name)
                )
        for worker in self.workers.values():
            self._supervise(worker)

    def _supervise(self, w: Supervised) -> None:
        now = time.monotonic()
        if w.restart_at is None:
            code = w.proc.poll()
            if code is None:
                return
            ran_s = now - w.started_at
            w.fast_failures = w.fast_failures + 1 if ran_s < self.fast_failure_s else 0
            if w.fast_failures >= self.max_fast_failures:
                raise RuntimeError(
                    f"{w.name} {describe_exit(code)}; it failed {w.fast_failures} times in a "
                    f"row, each within {self.fast_failure_s:.0f} s of starting; giving up. "
                    f"Last lines of its log ({self.group.log_dir / (w.name + '.log')}):\n"
                    + self.group.log_tail(w.name)
                )
            delay = min(self.backoff_s * 2 ** max(0, w.fast_failures - 1), RESTART_BACKOFF_MAX_S)
            last = self.group.log_tail(w.name, lines=1).strip()
            say(
                f"{w.name} {describe_exit(code)} after {ran_s:.0f} s"
                + (f" (last log line: {last})" if last else "")
                + f"; restarting it in {delay:.0f} s"
            )
            w.restart_at = now + delay
            return
        if now >= w.restart_at:
            self.group.forget(w.proc)
            w.proc, w.started_at, w.restart_at = w.start(), now, None
            w.restarts += 1
            say(f"restarted {w.name} (restart {w.restarts}, pid {w.proc.pid})")
