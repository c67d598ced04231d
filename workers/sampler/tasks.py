"""The sampling task: one chunk of a job through the engine, draws into Redis, then scoring."""

from __future__ import annotations

import logging
import time
from typing import Any

from shared.callbacks import set_status_and_notify
from shared.errors import InvalidInput, NotFound
from shared.metrics import record_generated
from shared.queues import enqueue_judging, enqueue_scoring
from shared.schemas import ChunkTask, ErrorInfo, JobCreate, JobStatus
from shared.scorers.judge import JudgeOptions
from shared.store import ACTIVE
from workers.runtime import Runtime
from workers.sampler.generation import GenerationEngine, GenerationRequest, PromptTooLong

log = logging.getLogger(__name__)

_SEED_MODULUS = 2**63 - 1


def slice_seed(job_seed: int | None, prompt_index: int, start: int) -> int | None:
    """A per-slice seed derived from the job's: the chunk plan fixes slices, so a seeded job
    draws the same samples at the same indices however its chunks are scheduled or retried."""
    if job_seed is None:
        return None
    return (job_seed * 1_000_003 + prompt_index * 65_537 + start) % _SEED_MODULUS


def render_prompts(engine: GenerationEngine, spec: JobCreate, task: ChunkTask) -> dict[int, str]:
    """The chat prompts of the chunk rendered with the model's chat template, by prompt index;
    ``InvalidInput`` naming ``prompts[i].messages`` when the template cannot render one."""
    rendered: dict[int, str] = {}
    for sl in task.slices:
        messages = spec.prompts[sl.prompt_index].messages
        if messages is None or sl.prompt_index in rendered:
            continue
        try:
            rendered[sl.prompt_index] = engine.render_chat(messages)
        except InvalidInput as exc:
            raise InvalidInput(exc.message, param=f"prompts[{sl.prompt_index}].messages") from exc
    return rendered


def build_requests(
    spec: JobCreate, task: ChunkTask, rendered: dict[int, str] | None = None
) -> list[GenerationRequest]:
    """One request per slice; chat prompts take their text from ``rendered``."""
    s = spec.sampling
    requests = []
    for sl in task.slices:
        spec_prompt = spec.prompts[sl.prompt_index]
        messages = tuple(spec_prompt.messages) if spec_prompt.messages is not None else None
        prompt = (rendered or {})[sl.prompt_index] if messages is not None else spec_prompt.prompt
        assert prompt is not None  # PromptSpec holds exactly one of prompt and messages
        if task.greedy:
            requests.append(
                GenerationRequest(
                    prompt=prompt,
                    n=1,
                    temperature=0.0,
                    top_p=1.0,
                    top_k=0,
                    max_tokens=s.max_tokens,
                    seed=None,
                    messages=messages,
                )
            )
        else:
            requests.append(
                GenerationRequest(
                    prompt=prompt,
                    n=sl.count,
                    temperature=s.temperature,
                    top_p=s.top_p,
                    top_k=s.top_k,
                    max_tokens=s.max_tokens,
                    seed=slice_seed(s.seed, sl.prompt_index, sl.start),
                    messages=messages,
                )
            )
    return requests


def sample_chunk(rt: Runtime, payload: dict[str, Any]) -> dict[str, Any]:
    """Generate one chunk, store its draws, hand it to scoring. The result (kept by RQ) carries
    the seconds of each stage (``stages_s``: read, engine, store, handoff), which
    bench/sampling_overhead.py and bench/pipeline_ceiling.py read back."""
    t0 = time.perf_counter()
    task = ChunkTask.model_validate(payload)
    if rt.engine is None:
        raise RuntimeError("sample_chunk runs only in a sampler worker (no engine loaded)")
    try:
        job = rt.store.get_job(task.job_id)
    except NotFound:
        return {"skipped": "job deleted"}
    if job.status.terminal:
        # Cancelled or failed jobs start no new chunks; draws already stored are kept.
        return {"skipped": f"job {job.status.value}"}
    rt.store.set_status(task.job_id, JobStatus.running, allowed_from=[JobStatus.queued])

    t_read = time.perf_counter()
    started = time.monotonic()
    try:
        rendered = render_prompts(rt.engine, job.spec, task)
        for index, text in rendered.items():
            rt.store.save_rendered_prompt(task.job_id, index, text)
        completions = rt.engine.generate(build_requests(job.spec, task, rendered))
    except InvalidInput as exc:
        # Retrying cannot help (e.g. a prompt longer than the context): fail the job now.
        param = exc.param
        if isinstance(exc, PromptTooLong) and exc.request_index is not None:
            index = task.slices[exc.request_index].prompt_index
            field = "messages" if job.spec.prompts[index].messages is not None else "prompt"
            param = f"prompts[{index}].{field}"
        error = ErrorInfo(code=exc.code, message=exc.message, param=param)
        set_status_and_notify(
            rt.store,
            rt.rq,
            rt.settings,
            task.job_id,
            JobStatus.failed,
            allowed_from=ACTIVE,
            error=error,
        )
        return {"failed": exc.message}

    engine_s = time.monotonic() - started
    t_engine = time.perf_counter()
    draws = sum(len(outs) for outs in completions)
    tokens = sum(c.tokens for outs in completions for c in outs)

    def counters(pipe: Any) -> None:
        record_generated(pipe, job.spec.model, draws=draws, tokens=tokens, seconds=engine_s)

    generated = 0
    if task.greedy:
        for sl, outs in zip(task.slices, completions, strict=True):
            rt.store.save_greedy_text(task.job_id, sl.prompt_index, outs[0].text)
        counters(rt.store.r)
    else:
        # Every draw of the chunk and the counters in one round trip (docs/BENCHMARKS.md).
        texts: dict[int, dict[int, str]] = {}
        for sl, outs in zip(task.slices, completions, strict=True):
            if len(outs) != sl.count:
                raise RuntimeError(f"engine returned {len(outs)} draws, expected {sl.count}")
            prompt_texts = texts.setdefault(sl.prompt_index, {})
            for i, c in enumerate(outs, start=sl.start):
                prompt_texts[i] = c.text
        generated = rt.store.save_texts_many(task.job_id, texts, also=counters)
    t_store = time.perf_counter()
    scorer = job.spec.scorer
    if isinstance(scorer, JudgeOptions):
        # The judge model's samplers score the draws, then the scorer finalises as usual.
        enqueue_judging(rt.rq, scorer.judge_model, task, rt.settings)
    else:
        enqueue_scoring(rt.rq, task, rt.settings)
    t_end = time.perf_counter()
    stages = {
        "read": t_read - t0,
        "engine": t_engine - t_read,
        "store": t_store - t_engine,
        "handoff": t_end - t_store,
    }
    return {"chunk": task.chunk_id, "new_draws": generated, "stages_s": stages}
