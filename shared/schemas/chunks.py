"""The queue payload: one sampling chunk (then the scoring of the same draws)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class ChunkSlice(BaseModel):
    """Draws ``start .. start + count - 1`` of prompt ``prompt_index``."""

    prompt_index: int
    start: int
    count: int


class ChunkTask(BaseModel):
    """One RQ job: a sampling chunk, then the scoring of the same draws."""

    job_id: str
    chunk_id: int
    greedy: bool = Field(False, description="A temperature-0, one-draw-per-prompt chunk.")
    slices: list[ChunkSlice]
