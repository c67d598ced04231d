"""The local stack both demos run on: start it, wait for its models, run the demo's jobs, stop it.

``probeval demo`` and ``probeval demo alignment`` differ in their models and jobs only; start-up,
the engine dtype, interrupts and the one-line error are the same, so they live here once.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import httpx

from probeval.interrupts import sigterm_as_keyboard_interrupt
from probeval.local import LocalStack, free_port, say, start_sampler

__all__ = ["run_demo_stack"]


def run_demo_stack(
    state_dir: Path,
    model_dir: Path,
    run: Callable[[LocalStack, str], int],
    *,
    judges: Sequence[Path] = (),
    loading: str,
) -> int:
    """Redis, gateway, scorer and a sampler of ``model_dir`` (plus one sampler per judge folder,
    each served under its folder's name); once every model is served, ``run(stack, base_url)``.
    Returns its exit code, 130 on Ctrl-C or SIGTERM, 1 with one line when the stack fails."""
    sigterm_as_keyboard_interrupt()
    names = [model_dir.name, *(judge.name for judge in judges)]
    with LocalStack(state_dir) as stack:
        # The shipped models are float32 and tiny; vLLM's "auto" runs float32 checkpoints in
        # bfloat16 on CPUs, which changes their greedy answers from the ones their cards report.
        stack.env.setdefault(
            "PROBEVAL_ENGINE_DTYPE", os.environ.get("PROBEVAL_ENGINE_DTYPE", "float32")
        )
        try:
            url = stack.redis()
            base = stack.services(str(model_dir), names[0], "127.0.0.1", free_port())
            for judge in judges:
                start_sampler(
                    stack.group, str(judge), stack.env, name=judge.name, proc_name="judge-sampler"
                )
            say(loading)
            for name in names:
                stack.wait_for_model(url, name)
            return run(stack, base)
        except KeyboardInterrupt:
            say("interrupted")
            return 130
        except (RuntimeError, TimeoutError, httpx.HTTPError) as exc:
            say(f"error: {exc}")
            return 1
