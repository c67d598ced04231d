"""SIGTERM handled like Ctrl-C by the commands that own a local stack (`up`, `demo`).

Raising ``KeyboardInterrupt`` from the handler unwinds the command through its ``with
LocalStack(...)`` block, whose exit stops every process it started; without it a SIGTERM
(``docker stop``, ``kill``, a CI timeout) would end the command and leave Redis, the gateway
and the workers running.
"""

from __future__ import annotations

import signal
from types import FrameType


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def sigterm_as_keyboard_interrupt() -> None:
    """From now on a SIGTERM or SIGINT to this process raises ``KeyboardInterrupt``."""
    signal.signal(signal.SIGTERM, _interrupt)
    # A shell without job control starts a background command (`probeval up &` in a script,
    # nohup, a CI step run in the background) with SIGINT ignored, and Python then leaves it
    # ignored: a `kill -INT` would do nothing and the stack would never stop. Like uvicorn, take
    # SIGINT back explicitly.
    signal.signal(signal.SIGINT, signal.default_int_handler)
