"""The judge task: a chunk's draws scored by the judge model this sampler serves.

A job whose scorer is ``judge`` sends each sampled chunk to the judge model's sample queue. The
judge sampler fills the job's template for every draw of the chunk, renders it through its own
chat template when it has one, and asks its engine for one greedy step with the log-probabilities
of the labels' first tokens, all draws in one engine call. The score of a draw is the
probability-weighted label value (``shared.scorers.judge.label_score``). Scores are stored like
any scorer's; then the chunk goes to the score queue, whose task finalises the job as usual.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from shared.callbacks import set_status_and_notify
from shared.errors import InvalidInput, NotFound
from shared.metrics import record_scored
from shared.queues import enqueue_scoring
from shared.schemas import ChatMessage, ChunkTask, ErrorInfo, GreedyResult, JobCreate, JobStatus
from shared.scorers.judge import JudgeOptions, label_score, render_template
from shared.store import ACTIVE, Store
from workers.runtime import Runtime
from workers.sampler.generation import GenerationEngine, LabelPrompt, PromptTooLong

log = logging.getLogger(__name__)


def policy_prompt(store: Store, job_id: str, spec: JobCreate, index: int) -> str:
    """The prompt as the policy model saw it: the raw prompt, or its stored chat rendering."""
    raw = spec.prompts[index].prompt
    if raw is not None:
        return raw
    rendered = store.rendered_prompt(job_id, index)
    if rendered is None:
        raise RuntimeError(f"the rendered chat prompt of prompt {index} is missing")
    return rendered


def judge_prompts(
    engine: GenerationEngine, options: JudgeOptions, values: Sequence[dict[str, str]]
) -> list[LabelPrompt]:
    """The filled judge templates, in the judge model's chat template when it has one. An engine
    with ``render_chats`` (``OpenAIEngine``: each rendering is a server round trip) renders them
    all in one call, concurrently; otherwise one ``render_chat`` each."""
    filled = [render_template(options.template, v) for v in values]
    if not engine.chat_template:
        return [LabelPrompt(f, False) for f in filled]
    chats = [[ChatMessage(role="user", content=f)] for f in filled]
    render_chats = getattr(engine, "render_chats", None)
    rendered = render_chats(chats) if render_chats else [engine.render_chat(c) for c in chats]
    return [LabelPrompt(r, True) for r in rendered]


def judge_chunk(rt: Runtime, payload: dict[str, Any]) -> dict[str, Any]:
    """Score one chunk's draws with the judge model this sampler serves (module docstring)."""
    task = ChunkTask.model_validate(payload)
    if rt.engine is None:
        raise RuntimeError("judge_chunk runs only in a sampler worker (no engine loaded)")
    store = rt.store
    try:
        job = store.get_job(task.job_id)
    except NotFound:
        return {"skipped": "job deleted"}
    if job.status == JobStatus.failed:
        return {"skipped": "job failed"}
    options = job.spec.scorer
    if not isinstance(options, JudgeOptions):
        raise RuntimeError(f"job {job.id} is not scored by a judge")

    # (prompt index, sample index or None for the greedy draw, draw text), in engine order.
    draws: list[tuple[int, int | None, str]] = []
    for sl in task.slices:
        if task.greedy:
            text = store.greedy_text(task.job_id, sl.prompt_index)
            if text is None:
                raise RuntimeError(f"greedy text of prompt {sl.prompt_index} is missing")
            draws.append((sl.prompt_index, None, text))
            continue
        indices = list(range(sl.start, sl.start + sl.count))
        texts = store.texts(task.job_id, sl.prompt_index, indices)
        for i, t in zip(indices, texts, strict=True):
            if t is None:
                raise RuntimeError(f"draw {i} of prompt {sl.prompt_index} is missing")
            draws.append((sl.prompt_index, i, t))

    policy = {
        sl.prompt_index: policy_prompt(store, task.job_id, job.spec, sl.prompt_index)
        for sl in task.slices
    }
    try:
        prompts = judge_prompts(
            rt.engine,
            options,
            [
                {
                    "prompt": policy[index],
                    "response": text,
                    "reference": job.spec.prompts[index].reference or "",
                }
                for index, _, text in draws
            ],
        )
        logprobs = rt.engine.label_logprobs(prompts, list(options.labels))
    except InvalidInput as exc:
        # Retrying cannot help (labels sharing a first token, a judge prompt over the context).
        param = exc.param
        message = exc.message
        if isinstance(exc, PromptTooLong) and exc.request_index is not None:
            index, sample, _ = draws[exc.request_index]
            param = "scorer.template"
            message = f"judge prompt of prompts[{index}] draw {sample}: {exc.message}"
        error = ErrorInfo(code=exc.code, message=message, param=param)
        # Through the one place a job's end queues its webhook and its archiving.
        set_status_and_notify(
            store,
            rt.rq,
            rt.settings,
            task.job_id,
            JobStatus.failed,
            allowed_from=ACTIVE,
            error=error,
        )
        return {"failed": message}

    scores: dict[int, dict[int, float]] = {}
    for (index, sample, text), lp in zip(draws, logprobs, strict=True):
        score = label_score(lp, options.labels)
        if sample is None:
            store.save_greedy(task.job_id, index, GreedyResult(text=text, score=score))
        else:
            scores.setdefault(index, {})[sample] = score
    judged = 0
    for index, by_sample in scores.items():
        judged += store.save_scores(task.job_id, index, by_sample)
    record_scored(store.r, job.spec.model, draws=sum(len(v) for v in scores.values()))
    enqueue_scoring(rt.rq, task, rt.settings)
    return {"chunk": task.chunk_id, "new_scores": judged}
