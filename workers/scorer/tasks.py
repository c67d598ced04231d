"""The scoring task: score one chunk's draws; the chunk that completes a job finalises it."""

from __future__ import annotations

from typing import Any

from shared.adaptive import advance_round
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
    """RQ task: score one chunk's draws, store them, finalise the job after its last."""
    task = ChunkTask.model_validate(payload)
    store = rt.store
    try:
        job = store.get_job(task.job_id)
    except NotFound:
        return {"skipped": "job deleted"}
    if job.status == JobStatus.failed:
        return {"skipped": "job failed"}
    # Draws of a cancelled job are still scored: cancelling keeps what was drawn. A rescore
    # job has no sampling chunk, so it starts running here.
    store.set_status(task.job_id, JobStatus.running, allowed_from=[JobStatus.queued])
    if scorer_definition(job.spec.scorer.name).judged:
        # The judge model's samplers stored the scores (workers/sampler/judging.py).
        check_judged(store, task)
        scored = 0
    else:
        scored = score_draws(store, job, task)
    if job.spec.stopping is not None and not task.greedy:
        for prompt_index, (start, end) in round_spans(task).items():
            advance_round(store, rt.rq, rt.settings, job, prompt_index, start, end)
    done = store.mark_chunk_scored(task.job_id, task.chunk_id)
    if job.spec.stopping is not None:
        if adaptive_finished(store, job.id):
            finalize(rt, job)
    elif done >= job.chunks_total:
        finalize(rt, job)
    return {"chunk": task.chunk_id, "new_scores": scored}


def score_draws(store: Store, job: JobRecord, task: ChunkTask) -> int:
    """Score the chunk's draws with the job's scorer; returns how many scores were new."""
    scorer = make_scorer(job.spec.scorer)
    scored = 0
    for sl in task.slices:
        reference = job.spec.prompts[sl.prompt_index].reference
        if task.greedy:
            text = store.greedy_text(task.job_id, sl.prompt_index)
            if text is None:
                raise RuntimeError(f"greedy text of prompt {sl.prompt_index} is missing")
            store.save_greedy(
                task.job_id, sl.prompt_index, GreedyResult(text=text, score=scorer(text, reference))
            )
            continue
        indices = list(range(sl.start, sl.start + sl.count))
        texts = store.texts(task.job_id, sl.prompt_index, indices)
        missing = [i for i, t in zip(indices, texts, strict=True) if t is None]
        if missing:
            raise RuntimeError(f"{len(missing)} draws of prompt {sl.prompt_index} are missing")
        scores = {
            i: scorer(t, reference) for i, t in zip(indices, texts, strict=True) if t is not None
        }
        scored += store.save_scores(task.job_id, sl.prompt_index, scores)
        record_scored(store.r, job.spec.model, draws=len(scores))
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


def round_spans(task: ChunkTask) -> dict[int, tuple[int, int]]:
    """Per prompt, the draws ``start .. end - 1`` of the one round this chunk holds for it."""
    spans: dict[int, tuple[int, int]] = {}
    for sl in task.slices:
        lo, hi = spans.get(sl.prompt_index, (sl.start, sl.start + sl.count))
        spans[sl.prompt_index] = (min(lo, sl.start), max(hi, sl.start + sl.count))
    return spans


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
