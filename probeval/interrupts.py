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
    """From now on a SIGTERM to this process raises ``KeyboardInterrupt`` in the main thread."""
    signal.signal(signal.SIGTERM, _interrupt)
