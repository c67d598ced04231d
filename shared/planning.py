"""Splitting a job into chunks: the unit of work of one sampler call and one scorer call."""

from __future__ import annotations

from collections.abc import Iterable

from shared.schemas import ChunkSlice, ChunkTask, JobCreate


def plan_chunks(
    job_id: str, spec: JobCreate, *, chunk_max_n: int, chunk_draws: int
) -> list[ChunkTask]:
    """Greedy chunk first (if asked), then sampling chunks.

    Each prompt's n draws are cut into slices of at most ``chunk_max_n`` (one engine request
    each), and consecutive slices are grouped into chunks of about ``chunk_draws`` draws, so
    a chunk holds several prompts when n is small and one slice when n is large. Sample
    indices are fixed here, which is what makes every write idempotent.
    """
    if chunk_max_n < 1 or chunk_draws < 1:
        raise ValueError("chunk_max_n and chunk_draws must be >= 1")
    slices = (
        [sl]
        for prompt_index in range(len(spec.prompts))
        for sl in round_slices(prompt_index, 0, spec.sampling.n, chunk_max_n)
    )
    return _pack(job_id, spec, slices, chunk_draws)


def round_slices(prompt_index: int, start: int, end: int, chunk_max_n: int) -> list[ChunkSlice]:
    """Draws ``start .. end - 1`` of one prompt as slices of at most ``chunk_max_n`` (one engine
    request each). Slice starts depend only on the round and ``chunk_max_n``, and a slice's seed
    only on its start, so a rerun of an adaptive job draws the same texts."""
    return [
        ChunkSlice(prompt_index=prompt_index, start=s, count=min(chunk_max_n, end - s))
        for s in range(start, end, chunk_max_n)
    ]


def plan_first_rounds(
    job_id: str, spec: JobCreate, first_end: int, *, chunk_max_n: int, chunk_draws: int
) -> list[ChunkTask]:
    """An adaptive job's first plan: the greedy chunk (if asked), then every prompt's first
    round (draws 0 .. first_end - 1), grouped into chunks of about ``chunk_draws`` draws. A
    round is never split across chunks: its scorer folds it into the prompt's stream at once.
    Later rounds are planned one at a time as earlier ones are scored (``shared.adaptive``)."""
    if chunk_max_n < 1 or chunk_draws < 1:
        raise ValueError("chunk_max_n and chunk_draws must be >= 1")
    rounds = (round_slices(i, 0, first_end, chunk_max_n) for i in range(len(spec.prompts)))
    return _pack(job_id, spec, rounds, chunk_draws)


def _pack(
    job_id: str, spec: JobCreate, units: Iterable[list[ChunkSlice]], chunk_draws: int
) -> list[ChunkTask]:
    """The greedy chunk (if asked), then ``units`` in order, packed into chunks of about
    ``chunk_draws`` draws; a unit (one slice, or one adaptive round) is never split."""
    chunks: list[ChunkTask] = []
    if spec.greedy:
        greedy = [ChunkSlice(prompt_index=i, start=0, count=1) for i in range(len(spec.prompts))]
        chunks.append(ChunkTask(job_id=job_id, chunk_id=0, greedy=True, slices=greedy))
    current: list[ChunkSlice] = []
    size = 0
    for unit in units:
        count = sum(sl.count for sl in unit)
        if current and size + count > chunk_draws:
            chunks.append(ChunkTask(job_id=job_id, chunk_id=len(chunks), slices=current))
            current, size = [], 0
        current.extend(unit)
        size += count
    if current:
        chunks.append(ChunkTask(job_id=job_id, chunk_id=len(chunks), slices=current))
    return chunks
