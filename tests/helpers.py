"""Test helpers: run the pipeline in-process against a real Redis with a fake engine."""

from __future__ import annotations

from rq import SimpleWorker
from rq.serializers import JSONSerializer

from shared import keys
from shared.config import Settings
from shared.queues import rq_connection, sample_queue, score_queue
from shared.store import Store
from workers import runtime
from workers.sampler.generation import GenerationEngine


def install_runtime(
    settings: Settings, engine: GenerationEngine | None, model: str
) -> runtime.Runtime:
    rt = runtime.build(settings)
    rt.engine = engine
    rt.model = model
    runtime.install(rt)
    return rt


def drain(settings: Settings, model: str) -> None:
    """Run sampler then scorer queues in burst mode until both are empty."""
    conn = rq_connection(settings.redis_url)
    for _ in range(10):
        SimpleWorker([sample_queue(conn, model)], connection=conn, serializer=JSONSerializer).work(
            burst=True
        )
        SimpleWorker([score_queue(conn)], connection=conn, serializer=JSONSerializer).work(
            burst=True
        )
        if not conn.llen(keys.rq_queue_list(keys.sample_queue(model))) and not conn.llen(
            keys.rq_queue_list(keys.SCORE_QUEUE)
        ):
            return


def register_model(store: Store, model: str) -> None:
    store.heartbeat(model, "test-worker", "fake 0 (test)", ttl_s=60)
