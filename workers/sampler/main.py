"""A sampler worker process: load the model once, then serve the model's queue until stopped."""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid

from shared.config import Settings
from shared.queues import sample_queue
from workers import runtime
from workers.supervision import chunk_worker, serve

log = logging.getLogger(__name__)


class Heartbeat(threading.Thread):
    """Keeps the worker listed under its model (GET /v1/models) while the process lives."""

    def __init__(self, rt: runtime.Runtime, model: str, worker_id: str, engine: str) -> None:
        super().__init__(name="probeval-heartbeat", daemon=True)
        self.rt, self.model, self.worker_id, self.engine = rt, model, worker_id, engine
        self.stopped = threading.Event()

    def beat(self) -> None:
        self.rt.store.heartbeat(
            self.model, self.worker_id, self.engine, ttl_s=self.rt.settings.worker_ttl_s
        )

    def run(self) -> None:
        while not self.stopped.wait(self.rt.settings.heartbeat_s):
            try:
                self.beat()
            except Exception as exc:  # a Redis blip must not kill the heartbeat
                log.warning("heartbeat failed: %s", exc)

    def stop(self) -> None:
        self.stopped.set()
        try:
            self.rt.store.unregister(self.model, self.worker_id)
        except Exception as exc:
            log.warning("could not unregister worker: %s", exc)


def run_sampler(
    model_path: str, name: str | None, settings: Settings, *, burst: bool = False
) -> None:
    # Imported here: only a sampler process pays for (and needs) vLLM.
    from workers.sampler.engine import VllmEngine

    model = name or os.path.basename(os.path.normpath(model_path))
    rt = runtime.build(settings)
    log.info("loading model %s from %s", model, model_path)
    rt.engine = VllmEngine(model_path, settings)
    rt.model = model
    runtime.install(rt)

    worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
    heartbeat = Heartbeat(rt, model, worker_id, rt.engine.description)
    heartbeat.beat()
    heartbeat.start()
    log.info("sampler %s serving model %s (%s)", worker_id, model, rt.engine.description)
    # Chunks run in this process (a SimpleWorker): the engine (and vLLM's engine subprocess) is
    # loaded once and never forked. ``serve`` restarts the work loop after a Redis outage
    # without reloading the engine.
    try:
        serve(
            chunk_worker([sample_queue(rt.rq, model)], rt.rq, settings),
            worker_id,
            settings,
            rt.rq,
            burst=burst,
        )
    finally:
        heartbeat.stop()
