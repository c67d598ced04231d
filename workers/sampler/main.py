"""A sampler worker process: load the model once and self-test it (or connect to an endpoint
that serves it), then serve the model's queue until stopped or until the engine dies.

Exit codes of an in-process sampler (``run_sampler``): 0 after a stop request (SIGTERM, burst),
``EXIT_ENGINE_DIED`` when the engine died (the model was unregistered at once, the chunk in hand
went back on the queue as one failed attempt), ``EXIT_SELF_TEST_FAILED`` when no dtype passed
the start-up self-test (the model was never registered). Whatever runs the sampler restarts it
(docs/RELIABILITY.md, "Engine death").
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import threading
import uuid
from typing import TYPE_CHECKING

from shared.config import Settings
from shared.queues import sample_queue
from shared.schemas import ModelCapabilities
from shared.store import Store
from workers import runtime
from workers.availability import Availability
from workers.sampler.generation import (
    EngineRefused,
    EngineUnavailable,
    GenerationEngine,
    MonitoredEngine,
)
from workers.sampler.health import DeathInterrupt, SelfTestFailed, load_checked_engine
from workers.supervision import Halt, chunk_worker, serve

if TYPE_CHECKING:
    from workers.sampler.openai_engine import EndpointConfig

log = logging.getLogger(__name__)

EXIT_ENGINE_DIED = 3
EXIT_SELF_TEST_FAILED = 4
# After the engine died, the chunk in hand is normally handed back within a second. If the
# process is still alive after this long (a call that no signal breaks), it exits hard; its
# chunk, no longer heartbeated, is then re-queued by the abandoned-chunk cleanup.
ENGINE_DEATH_GRACE_S = 20.0


class SamplerExit(Exception):  # noqa: N818 - an exit, not an error of the caller
    """The sampler cannot serve (its endpoint does not serve the model, refused its key, ...):
    the command prints this message as one line and exits with code 1."""


class Heartbeat(threading.Thread):
    """Keeps the worker listed under its model (GET /v1/models) while the process lives and,
    with an ``Availability``, only while its engine answers: a failed probe unregisters it."""

    def __init__(
        self,
        rt: runtime.Runtime,
        model: str,
        worker_id: str,
        engine: str,
        availability: Availability | None = None,
    ) -> None:
        super().__init__(name="probeval-heartbeat", daemon=True)
        self.rt, self.model, self.worker_id, self.engine = rt, model, worker_id, engine
        self.availability = availability
        self.stopped = threading.Event()
        # A beat in flight must not re-register the worker after ``stop`` unregistered it.
        self._lock = threading.Lock()

    def beat(self) -> None:
        with self._lock:
            if self.stopped.is_set():
                return
            self.rt.store.heartbeat(
                self.model, self.worker_id, self.engine, ttl_s=self.rt.settings.worker_ttl_s
            )

    def tick(self) -> None:
        if self.availability is None or self.availability.refresh():
            self.beat()
        else:
            self.rt.store.unregister(self.model, self.worker_id)

    def run(self) -> None:
        while not self.stopped.wait(self.rt.settings.heartbeat_s):
            try:
                self.tick()
            except Exception as exc:  # a Redis blip must not kill the heartbeat
                log.warning("heartbeat failed: %s", exc)

    def stop(self) -> None:
        with self._lock:
            self.stopped.set()
        try:
            self.rt.store.unregister(self.model, self.worker_id)
        except Exception as exc:
            log.warning("could not unregister worker: %s", exc)


def register_capabilities(store: Store, model: str, engine: GenerationEngine) -> None:
    """Chat template and tokenizer, for the gateway's checks of chat prompts and judge labels."""
    tokenizer = engine.tokenizer_json()
    sha = hashlib.sha256(tokenizer.encode()).hexdigest() if tokenizer is not None else None
    caps = ModelCapabilities(
        chat_template=engine.chat_template, judging=engine.judging, tokenizer_sha256=sha
    )
    store.register_capabilities(model, caps, tokenizer)


def _exit_hard_after(grace_s: float) -> None:
    def run() -> None:
        log.error("still running %.0f s after the engine died; exiting", grace_s)
        logging.shutdown()
        os._exit(EXIT_ENGINE_DIED)

    timer = threading.Timer(grace_s, run)
    timer.daemon = True
    timer.start()


def run_sampler(
    model_path: str, name: str | None, settings: Settings, *, burst: bool = False
) -> int:
    """Serve ``model_path`` until stopped; returns the process's exit code (module docstring)."""
    # Imported here: only a sampler process pays for (and needs) vLLM.
    from workers.sampler.engine import VllmEngine, dtype_candidates

    model = name or os.path.basename(os.path.normpath(model_path))
    halt = Halt()
    interrupt = DeathInterrupt(halt)
    try:
        engine = load_checked_engine(
            model, model_path, settings, dtype_candidates(settings), VllmEngine, interrupt
        )
    except SelfTestFailed as exc:
        log.error("%s", exc)
        return EXIT_SELF_TEST_FAILED
    serve_engine(settings, model, engine, None, burst=burst, halt=halt)
    if halt.reason is not None:
        log.error("sampler exits: %s", halt.reason)
        return EXIT_ENGINE_DIED
    return 0


def run_endpoint_sampler(
    config: EndpointConfig, name: str | None, settings: Settings, *, burst: bool = False
) -> None:
    """Serve ``name`` (default: the served model's name) by calling an OpenAI-compatible
    endpoint; raises ``SamplerExit`` when the endpoint does not answer, does not list the model
    or refuses the key, at start or (refused key) later."""
    # Imported here: an in-process sampler needs neither httpx's pool nor tenacity.
    from workers.sampler.openai_engine import OpenAIEngine

    engine = OpenAIEngine(config)
    try:
        reason = engine.check()
    except EngineRefused as exc:
        raise SamplerExit(str(exc)) from exc
    if reason is not None:
        raise SamplerExit(f"{reason}; start the endpoint first or fix --endpoint/--served-model")
    try:
        for absent in engine.probe():
            log.warning("endpoint %s serves %s", engine.base, absent)
    except EngineRefused as exc:
        raise SamplerExit(str(exc)) from exc
    except EngineUnavailable as exc:
        raise SamplerExit(f"endpoint stopped answering at start: {exc}") from exc
    try:
        serve_engine(
            settings,
            name or config.served_model,
            engine,
            Availability(engine.check, up=True),
            burst=burst,
        )
    finally:
        engine.close()


def serve_engine(
    settings: Settings,
    model: str,
    engine: GenerationEngine,
    availability: Availability | None,
    *,
    burst: bool,
    halt: Halt | None = None,
) -> None:
    """Register ``engine`` as ``model`` and serve its queue until ``serve`` returns: what every
    sampler process runs once its engine is built (a benchmark passes its own engine here:
    bench/canned_engine.py). An engine that dies (``MonitoredEngine``)
    unregisters the worker at once and halts it; otherwise a worker that stopped itself
    (``ChunkWorker.fatal``) raises ``SamplerExit``."""
    # Built once, here: every chunk this process runs gets this runtime (workers/runtime.py).
    rt = runtime.build(settings, engine=engine, model=model)

    register_capabilities(rt.store, model, engine)
    worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
    heartbeat = Heartbeat(rt, model, worker_id, engine.description, availability)
    if isinstance(engine, MonitoredEngine):

        def engine_died(reason: str) -> None:
            # On the engine's monitor thread: no new job may be routed here from now on.
            heartbeat.stop()
            _exit_hard_after(ENGINE_DEATH_GRACE_S)

        engine.on_death(engine_died)
    heartbeat.beat()
    heartbeat.start()
    log.info("sampler %s serving model %s (%s)", worker_id, model, engine.description)
    # Chunks run in this process (a SimpleWorker): the engine (and vLLM's engine subprocess) is
    # loaded once and never forked. ``serve`` restarts the work loop after a Redis outage
    # without reloading the engine, but not after a ``halt`` (the engine died).
    make = chunk_worker([sample_queue(rt.rq, model)], rt, availability=availability, halt=halt)
    try:
        fatal = serve(make, worker_id, rt, burst=burst, halt=halt)
    finally:
        heartbeat.stop()
    if fatal is not None and (halt is None or halt.reason is None):
        raise SamplerExit(fatal)
