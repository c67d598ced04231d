"""A scorer worker process: scores chunks and finalises jobs; CPU only, no vLLM."""

from __future__ import annotations

import os
import socket
import uuid

from rq import SimpleWorker
from rq.serializers import JSONSerializer

from shared.config import Settings
from shared.queues import score_queue
from workers import runtime


def run_scorer(settings: Settings, *, burst: bool = False) -> None:
    rt = runtime.build(settings)
    runtime.install(rt)
    worker_id = f"scorer:{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
    # Scoring a chunk is short and needs no per-job isolation; running it in-process avoids a
    # fork per chunk.
    worker = SimpleWorker(
        [score_queue(rt.rq)], connection=rt.rq, serializer=JSONSerializer, name=worker_id
    )
    worker.work(burst=burst, logging_level="WARNING", with_scheduler=False)
