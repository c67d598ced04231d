"""`probeval up`: Redis, the gateway, one sampler and one scorer in the foreground until Ctrl-C."""

from __future__ import annotations

import argparse
import os
import signal
import time
from pathlib import Path
from typing import Any

from probeval.cli import UsageError
from probeval.local import (
    ProcessGroup,
    free_port,
    redis_reachable,
    start_gateway,
    start_redis,
    start_sampler,
    start_scorer,
)
from shared.config import get_settings

DEFAULT_STATE_DIR = Path("var")


def add_parser(sub: Any, name: str, help_text: str) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = sub.add_parser(name, help=help_text, description=help_text)
    p.add_argument("--model", required=True, help="model folder the sampler serves")
    p.add_argument("--name", help="model name for jobs (default: the folder's name)")
    p.add_argument("--host", default="127.0.0.1", help="gateway bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="gateway port (default 8000)")
    p.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR,
                   help="logs and the local Redis's data (default ./var)")
    return p


def say(message: str) -> None:
    print(f"[probeval up] {message}", flush=True)


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
        from shared.store import Store, connect

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


def run(args: argparse.Namespace) -> int:
    if not os.path.isdir(args.model):
        raise UsageError(f"probeval up: --model {args.model!r} is not a folder")
    model = args.name or os.path.basename(os.path.normpath(args.model))
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    with LocalStack(args.state_dir) as stack:
        try:
            url = stack.redis()
            base = stack.services(args.model, args.name, args.host, args.port)
            say(f"loading model {model!r} in the sampler (vLLM start-up takes ~30 s on a CPU)")
            stack.wait_for_model(url, model)
            say(f"ready: model {model!r} is served; submit jobs to {base}/v1/jobs; Ctrl-C stops")
            while True:
                stack.check_alive()
                time.sleep(1)
        except KeyboardInterrupt:
            return 0
        except (RuntimeError, TimeoutError) as exc:
            say(f"error: {exc}")
            return 1
