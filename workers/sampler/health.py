"""Engine health in a sampler process: the start-up self-test, the dtype choice on CPUs, and
breaking the main thread out of a call into an engine that died (docs/RELIABILITY.md, "Engine
death").

The self-test runs one short greedy request and one seeded ``n > 1`` request through the engine
before the sampler registers its model: the two request kinds every job uses. A model or dtype
whose kernels crash (an illegal instruction kills vLLM's engine core on some CPUs) fails here,
where the sampler can still say so and exit, instead of failing every chunk it takes.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING, Protocol

from shared.config import Settings
from workers.sampler.generation import (
    EngineDied,
    GenerationEngine,
    GenerationRequest,
    MonitoredEngine,
)

if TYPE_CHECKING:
    from workers.supervision import Halt

__all__ = [
    "DeathInterrupt",
    "SelfTestFailed",
    "load_checked_engine",
    "self_test",
]

log = logging.getLogger(__name__)

# Any tokenizer encodes this to a few tokens; common English words, so a BPE vocabulary has
# merged tokens for it (not only single bytes).
SELF_TEST_PROMPT = "The river runs past the old mill and"
SELF_TEST_TOKENS = 4
SELF_TEST_N = 4
SELF_TEST_SEED = 1234
# The signal that tells the main thread its engine died (the handler decides what to break).
INTERRUPT_SIGNAL = signal.SIGUSR1


class SelfTestFailed(RuntimeError):
    """The engine could not be loaded, or failed the self-test, in every dtype tried."""


def self_test(engine: GenerationEngine) -> None:
    """One greedy and one seeded ``n = SELF_TEST_N`` request; raises on any failure, including
    a short or malformed answer."""
    greedy = GenerationRequest(
        prompt=SELF_TEST_PROMPT,
        n=1,
        temperature=0.0,
        top_p=1.0,
        top_k=0,
        max_tokens=SELF_TEST_TOKENS,
    )
    seeded = GenerationRequest(
        prompt=SELF_TEST_PROMPT,
        n=SELF_TEST_N,
        temperature=1.0,
        top_p=1.0,
        top_k=0,
        max_tokens=SELF_TEST_TOKENS,
        seed=SELF_TEST_SEED,
    )
    results = engine.generate([greedy, seeded])
    counts = [len(r) for r in results]
    if counts != [1, SELF_TEST_N]:
        raise RuntimeError(f"the engine returned {counts} completions for requests of n=[1, 4]")
    for completions in results:
        for c in completions:
            if not 1 <= c.tokens <= SELF_TEST_TOKENS:
                raise RuntimeError(
                    f"a completion of {c.tokens} tokens (max_tokens {SELF_TEST_TOKENS})"
                )


class _Loader(Protocol):
    def __call__(self, model_path: str, settings: Settings, *, dtype: str) -> MonitoredEngine: ...


def load_checked_engine(
    model: str,
    model_path: str,
    settings: Settings,
    dtypes: list[str],
    load: _Loader,
    interrupt: DeathInterrupt,
) -> MonitoredEngine:
    """Load the engine in the first of ``dtypes`` that loads and passes ``self_test``.

    A failed dtype's engine is closed before the next is tried: an engine core killed by an
    illegal instruction is a dead child process, and the sampler loads again in the same process.
    Raises ``SelfTestFailed`` naming the model, every dtype tried with its error, and the fix.
    """
    failures: list[str] = []
    for dtype in dtypes:
        engine: MonitoredEngine | None = None
        try:
            log.info("loading model %s from %s with dtype %s", model, model_path, dtype)
            engine = load(model_path, settings, dtype=dtype)
            interrupt.watch(engine)
            self_test(engine)
        except Exception as exc:
            failures.append(f"dtype {dtype}: {type(exc).__name__}: {exc}")
            log.warning("self-test of model %s with dtype %s failed: %s", model, dtype, exc)
            interrupt.watch(None)
            if engine is not None:
                _close(engine)
            continue
        if len(dtypes) > 1:
            log.info("engine_dtype auto: using %s (its self-test passed)", dtype)
        return engine
    raise SelfTestFailed(
        f"model {model!r} ({model_path}) failed the sampler's start-up self-test "
        f"({'; '.join(failures)}). {_fix(dtypes)}"
    )


def _fix(dtypes: list[str]) -> str:
    if "float32" in dtypes:
        return (
            "float32 failed too, so the model itself does not load or generate: check its "
            "config.json, weights and tokenizer (vLLM's error is in the log above)."
        )
    return (
        f"Try PROBEVAL_ENGINE_DTYPE=float32 (or auto): {'/'.join(dtypes)} kernels crash on some "
        "CPUs; vLLM's error is in the log above."
    )


def _close(engine: object) -> None:
    close: Callable[[], None] | None = getattr(engine, "close", None)
    if close is None:
        return
    try:
        close()
    except Exception as exc:
        log.warning("closing the failed engine: %s", exc)


class DeathInterrupt:
    """Breaks the main thread out of whatever it is doing when its engine dies.

    vLLM can leave a ``generate`` call blocked forever after its engine core died, and an idle
    RQ worker blocks for minutes waiting for a chunk. The engine's monitor thread calls
    ``fire``; the handler, in the main thread, raises ``EngineDied`` inside a ``generate`` call
    (RQ then records the running chunk as a failed attempt and re-queues it) and otherwise asks
    the RQ worker for RQ's warm shutdown (``StopRequested`` when idle; after the chunk in hand
    when busy). Must be constructed in the main thread (signal handlers live there).
    """

    def __init__(self, halt: Halt) -> None:
        self.engine: MonitoredEngine | None = None
        self.halt = halt
        self._lock = threading.Lock()
        self._main = threading.main_thread().ident
        signal.signal(INTERRUPT_SIGNAL, self._handle)

    def watch(self, engine: MonitoredEngine | None) -> None:
        """Halt and interrupt the main thread when ``engine`` dies (``None``: stop watching,
        e.g. a dtype that failed its self-test, which must not halt the engine loaded next)."""
        with self._lock:
            self.engine = engine
            if engine is None:
                self.halt.reason = None
        if engine is not None:
            engine.on_death(lambda reason: self.fire(engine, reason))

    def fire(self, engine: MonitoredEngine, reason: str) -> None:
        """Called where the engine found its death: its monitor thread, or the main thread
        inside ``generate`` (which then raises ``EngineDied`` itself: no signal needed)."""
        with self._lock:
            if engine is not self.engine:
                return
            self.halt.set(f"the engine died: {reason}")
        if self._main is not None and threading.get_ident() != self._main:
            signal.pthread_kill(self._main, INTERRUPT_SIGNAL)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        engine = self.engine
        if engine is None or engine.death is None:
            return
        if engine.in_generate:
            raise EngineDied(engine.death)
        worker = self.halt.worker
        if worker is not None:
            worker.request_stop(signum, frame)
