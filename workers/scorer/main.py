"""A scorer worker process: scores chunks and finalises jobs; CPU only, no vLLM."""

from __future__ import annotations

import os
import socket
import uuid

from shared.config import Settings
from shared.queues import callback_queue, score_queue
from workers import runtime
from workers.supervision import chunk_worker, serve


def run_scorer(settings: Settings, *, burst: bool = False) -> None:
    """Serve the score and webhook queues in this process until stopped (or empty, ``burst``)."""
    rt = runtime.build(settings)
    worker_id = f"scorer:{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
    # Scoring a chunk is short and needs no per-job isolation; running it in-process avoids a
    # fork per chunk. ``serve`` adds abandoned-chunk detection and reconnects (supervision.py).
    # Webhook deliveries first (short, and a job's end should not wait behind chunks); their
    # retries wait in RQ's scheduled registry, which the scheduler this worker runs empties.
    make = chunk_worker([callback_queue(rt.rq), score_queue(rt.rq)], rt)
    serve(make, worker_id, rt, burst=burst, with_scheduler=True)
