"""A scorer worker process: scores chunks and finalises jobs; CPU only, no vLLM."""

from __future__ import annotations

import os
import socket
import uuid

import numpy as np

from shared.config import Settings
from shared.queues import archive_queue, callback_queue, score_queue
from workers import runtime
from workers.supervision import chunk_worker, serve


def warm_up() -> None:
    """Pay the imports and first calls of finalising a job (bounds, leak statements, scorers)
    before taking chunks, not on the first job's critical path: measured, scipy.stats alone
    took 4.5 s on the first finalisation of a fresh scorer on a loaded 2-core host
    (docs/BENCHMARKS.md, pipeline ceiling)."""
    from shared.bounds import compute_bounds
    from shared.results import full_score_bounds
    from shared.schemas import JobCreate
    from shared.stats.family import binomial_pvalues_above
    from shared.stats.leak import mean_leak_at_k
    from workers.scorer.scoring import make_scorer

    spec = JobCreate.model_validate(
        {
            "model": "warm-up",
            "prompts": [{"id": "p", "prompt": "p", "reference": "a b"}],
            "sampling": {"n": 8},
            "scorer": {"name": "rouge_l_recall"},
        }
    )
    row = [make_scorer(spec.scorer)(t, "a b") for t in ("a", "b a", "a b", "", "a", "b", "c", "a")]
    compute_bounds([row], spec.options())
    full_score_bounds([row], spec.alpha)
    binomial_pvalues_above(np.array([1]), np.array([8]), tau=spec.leak_tau)
    mean_leak_at_k(np.array([1]), np.array([8]), [1, 2], alpha=spec.alpha)


def run_scorer(settings: Settings, *, burst: bool = False) -> None:
    """Serve the score and webhook queues in this process until stopped (or empty, ``burst``)."""
    warm_up()
    rt = runtime.build(settings)
    worker_id = f"scorer:{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
    # Scoring a chunk is short and needs no per-job isolation; running it in-process avoids a
    # fork per chunk. ``serve`` adds abandoned-chunk detection and reconnects (supervision.py).
    # Webhook deliveries first (short, and a job's end should not wait behind chunks); their
    # retries wait in RQ's scheduled registry, which the scheduler this worker runs empties.
    # Archiving last: it can wait, and a running job's chunks should not wait behind it.
    # An idle scorer blocks on the score queue, where latency matters most.
    scores = score_queue(rt.rq)
    make = chunk_worker([callback_queue(rt.rq), scores, archive_queue(rt.rq)], rt, wait_on=scores)
    serve(make, worker_id, rt, burst=burst, with_scheduler=True)
