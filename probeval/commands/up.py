"""`probeval up`: Redis, the gateway, one sampler and one scorer in the foreground until Ctrl-C.

The sampler and the scorer are restarted when they exit (`LocalStack.check_alive`, with back-off);
after three fast failures in a row `up` stops with the worker's last log lines and exit code 1.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

from probeval.cli import UsageError
from probeval.interrupts import sigterm_as_keyboard_interrupt
from probeval.local import LocalStack, say

DEFAULT_STATE_DIR = Path("var")


def add_parser(sub: Any, name: str, help_text: str) -> argparse.ArgumentParser:
    """The ``up`` flags: the model folder, its name and where the gateway listens."""
    p: argparse.ArgumentParser = sub.add_parser(name, help=help_text, description=help_text)
    p.add_argument("--model", required=True, help="model folder the sampler serves")
    p.add_argument("--name", help="model name for jobs (default: the folder's name)")
    p.add_argument("--host", default="127.0.0.1", help="gateway bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="gateway port (default 8000)")
    p.add_argument(
        "--state-dir",
        type=Path,
        default=DEFAULT_STATE_DIR,
        help="logs and the local Redis's data (default ./var)",
    )
    return p


def run(args: argparse.Namespace) -> int:
    """``probeval up``: Redis, gateway, sampler and scorer on this machine until Ctrl-C."""
    if not os.path.isdir(args.model):
        raise UsageError(f"probeval up: --model {args.model!r} is not a folder")
    model = args.name or os.path.basename(os.path.normpath(args.model))
    sigterm_as_keyboard_interrupt()
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
