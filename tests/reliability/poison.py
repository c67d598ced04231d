"""A chunk task that kills the worker running it, every time (a poison chunk). The scorer
imports it by dotted path, as RQ imports every task, and calls it with its runtime first."""

from __future__ import annotations

import os
import signal
from typing import Any

from workers.runtime import Runtime


def kill_worker(rt: Runtime, payload: dict[str, Any]) -> None:
    os.kill(os.getpid(), signal.SIGKILL)
