"""The scoring task: score one chunk's draws; the chunk that completes a job finalises it."""

from __future__ import annotations

import time
from typing import Any

from shared.adaptive import advance_chunk
from shared.adaptive import finished as adaptive_finished
from shared.callbacks import set_status_and_notify
from shared.errors import NotFound
from shared.metrics import record_scored
from shared.results import build_results
from shared.schemas import ChunkTask, GreedyResult, JobStatus
from shared.scorers import scorer_definition
from shared.store import ACTIVE, JobRecord, Store
from workers.runtime import Runtime
from workers.scorer.scoring import make_scorer


def score_chunk(rt: Runtime, payload: dict[str, Any]) -> dict[str, Any]:
    """Score one chunk; the result (kept by RQ) carries the seconds of each stage
    (``stages_s``: read, score, write, finalize), read back by bench/pipeline_ceiling.py."""
    t0 = time.perf_counter()
    stages = {"read": 0.0, "score": 0.0, "write": 0.0, "finalize": 0.0}
    task = ChunkTask.model_validate(payload)
    store = rt.store
    try:
        job = store.get_job(task.job_id)
    except NotFound:
        return {"skipped": "job deleted"}
    if job.status == JobStatus.failed:
        return {"skipped": "job failed"}
    if job.archive is not None:
        return {"skipped": "job archived"}
    # Draws of a cancelled job are still scored: cancelling keeps what was drawn. A rescore
    # job has no sampling chunk, so it starts running here.
    store.set_status(task.job_id, JobStatus.running, allowed_from=[JobStatus.queued])
    if scorer_definition(job.spec.scorer.name).judged:
        # The judge model's samplers stored the scores (workers/sampler/judging.py).
        check_judged(store, task)
        scored = 0
    else:
        scored = score_draws(store, job, task, stages)
    if job.spec.stopping is not None and not task.greedy:
        advance_chunk(store, rt.rq, rt.settings, job, task)
    done = store.mark_chunk_scored(task.job_id, task.chunk_id)
    t_final = time.perf_counter()
    if job.spec.stopping is not None:
        if adaptive_finished(store, job.id):
            finalize(rt, job)
    elif done >= job.chunks_total:
        finalize(rt, job)
    stages["finalize"] = time.perf_counter() - t_final
    # What the scoring loop did not account for: the job read, status, rounds, the scored mark.
    stages["read"] += t_final - t0 - stages["read"] - stages["score"] - stages["write"]
    return {"chunk": task.chunk_id, "new_scores": scored, "stages_s": stages}


def score_draws(
    store: Store, job: JobRecord, task: ChunkTask, stages: dict[str, float] | None = None
) -> int:
    """Score the chunk's draws with the job's scorer; returns how many scores were new.
    ``stages`` (if given) accumulates the seconds spent reading, scoring and writing."""
    stages = {} if stages is None else stages
    scorer = make_scorer(job.spec.scorer)
    t0 = time.perf_counter()
    sampled = [sl for sl in task.slices if not task.greedy]
    for sl in task.slices if task.greedy else []:
        reference = job.spec.prompts[sl.prompt_index].reference
        text = store.greedy_text(task.job_id, sl.prompt_index)
        if text is None:
            raise RuntimeError(f"greedy text of prompt {sl.prompt_index} is missing")
        store.save_greedy(
            task.job_id, sl.prompt_index, GreedyResult(text=text, score=scorer(text, reference))
        )
    # A chunk's draws in one read and its scores in one write, whatever its number of slices.
    wanted: dict[int, list[int]] = {}
    for sl in sampled:
        wanted.setdefault(sl.prompt_index, []).extend(range(sl.start, sl.start + sl.count))
    stored = store.texts_many(task.job_id, wanted)
    t1 = time.perf_counter()
    scores: dict[int, dict[int, float]] = {}
    for prompt_index, indices in wanted.items():
        texts = stored[prompt_index]
        missing = sum(t is None for t in texts)
        if missing:
            raise RuntimeError(f"{missing} draws of prompt {prompt_index} are missing")
        reference = job.spec.prompts[prompt_index].reference
        scores[prompt_index] = {
            i: scorer(t, reference) for i, t in zip(indices, texts, strict=True) if t is not None
        }
    t2 = time.perf_counter()
    count = sum(len(v) for v in scores.values())
    scored = (
        store.save_scores_many(
            task.job_id,
            scores,
            also=lambda pipe: record_scored(pipe, job.spec.model, draws=count),
        )
        if scores
        else 0
    )
    t3 = time.perf_counter()
    stages["read"] = stages.get("read", 0.0) + t1 - t0
    stages["score"] = stages.get("score", 0.0) + t2 - t1
    stages["write"] = stages.get("write", 0.0) + t3 - t2
    return scored


def check_judged(store: Store, task: ChunkTask) -> None:
    """A judged chunk reaches the scorer only after the judge stored every score."""
    for sl in task.slices:
        if task.greedy:
            if sl.prompt_index not in store.greedy(task.job_id):
                raise RuntimeError(f"judged greedy score of prompt {sl.prompt_index} is missing")
            continue
        indices = list(range(sl.start, sl.start + sl.count))
        if any(s is None for s in store.scores(task.job_id, sl.prompt_index, indices)):
            raise RuntimeError(f"judged scores of prompt {sl.prompt_index} are missing")


def finalize(rt: Runtime, job: JobRecord) -> None:
    """Compute and store the results, then mark the job succeeded.

    Idempotent: two scorers that finish the last chunks at once compute the same results from
    the same stored scores, and the status moves only from an active state.
    """
    store = rt.store
    if store.get_status(job.id) not in ACTIVE:
        return
    store.save_results(job.id, build_results(store, job, status=JobStatus.succeeded))
    set_status_and_notify(
        store, rt.rq, rt.settings, job.id, JobStatus.succeeded, allowed_from=ACTIVE
    )
