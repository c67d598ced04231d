"""A sampler worker process: load the model once (or connect to an endpoint that serves it),
then serve the model's queue until stopped."""

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
from workers.sampler.generation import EngineRefused, GenerationEngine
from workers.supervision import chunk_worker, serve

if TYPE_CHECKING:
    from workers.sampler.openai_engine import EndpointConfig

log = logging.getLogger(__name__)


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

    def beat(self) -> None:
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


def run_sampler(
    model_path: str, name: str | None, settings: Settings, *, burst: bool = False
) -> None:
    # Imported here: only a sampler process pays for (and needs) vLLM.
    from workers.sampler.engine import VllmEngine

    model = name or os.path.basename(os.path.normpath(model_path))
    log.info("loading model %s from %s", model, model_path)
    _serve_model(settings, model, VllmEngine(model_path, settings), None, burst=burst)


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
        _serve_model(
            settings,
            name or config.served_model,
            engine,
            Availability(engine.check, up=True),
            burst=burst,
        )
    finally:
        engine.close()


def _serve_model(
    settings: Settings,
    model: str,
    engine: GenerationEngine,
    availability: Availability | None,
    *,
    burst: bool,
) -> None:
    # Built once, here: every chunk this process runs gets this runtime (workers/runtime.py).
    rt = runtime.build(settings, engine=engine, model=model)

    register_capabilities(rt.store, model, engine)
    worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
    heartbeat = Heartbeat(rt, model, worker_id, engine.description, availability)
    heartbeat.beat()
    heartbeat.start()
    log.info("sampler %s serving model %s (%s)", worker_id, model, engine.description)
    # Chunks run in this process (a SimpleWorker): the engine (and vLLM's engine subprocess) is
    # loaded once and never forked. ``serve`` restarts the work loop after a Redis outage
    # without reloading the engine.
    try:
        fatal = serve(
            chunk_worker([sample_queue(rt.rq, model)], rt, availability=availability),
            worker_id,
            rt,
            burst=burst,
        )
    finally:
        heartbeat.stop()
    if fatal is not None:
        raise SamplerExit(fatal)
