"""Whether a worker's engine can serve right now: the gate between probing it and taking chunks.

An in-process engine is available for as long as its process lives (engine death ends the
process), so its worker has no ``Availability``. An engine behind a network (an OpenAI-compatible
endpoint) comes and goes independently of the worker: the sampler's heartbeat thread probes it
(``refresh``) and registers the model only while the probe passes; a chunk that meets a dead
endpoint closes the gate (``mark_down``), and the work loop takes no chunk while it is closed
(``wait_until_up``). Chunks left in the queue meanwhile stay there for any other worker.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

__all__ = ["Availability", "Probe"]

Probe = Callable[[], str | None]
"""Returns ``None`` when the engine can serve, else why it cannot (one line, for the log)."""


class Availability:
    """A probe and its last verdict; thread-safe (the heartbeat thread and the work loop)."""

    def __init__(self, probe: Probe, *, up: bool = False) -> None:
        self._probe = probe
        self._up = threading.Event()
        self._lock = threading.Lock()
        self.reason: str | None = None if up else "not probed yet"
        if up:
            self._up.set()

    @property
    def up(self) -> bool:
        return self._up.is_set()

    def refresh(self) -> bool:
        """Probe now and record the verdict; a probe that raises counts as down."""
        try:
            reason = self._probe()
        except Exception as exc:  # a probe bug must not stop the heartbeat thread
            reason = f"probe failed: {type(exc).__name__}: {exc}"
        self._set(reason)
        return reason is None

    def mark_down(self, reason: str) -> None:
        """A chunk met the engine unavailable; the next successful probe reopens the gate."""
        self._set(reason)

    def wait_until_up(self, timeout_s: float) -> bool:
        return self._up.wait(timeout_s)

    def _set(self, reason: str | None) -> None:
        with self._lock:
            was_up = self._up.is_set()
            self.reason = reason
            if reason is None:
                self._up.set()
            else:
                self._up.clear()
        if was_up and reason is not None:
            log.warning("engine unavailable: %s; taking no chunks until it answers", reason)
        elif not was_up and reason is None:
            log.info("engine available")
