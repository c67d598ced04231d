"""The models live samplers serve, and what they register about each."""

from __future__ import annotations

from pydantic import BaseModel, Field


class ModelInfo(BaseModel):
    """A model served by live sampler workers."""

    name: str
    engine: str
    workers: int
    chat_template: bool = Field(
        False, description="The model has a chat template: jobs may send `messages`."
    )


class ModelCapabilities(BaseModel):
    """What a model's samplers register besides liveness (stored per model)."""

    chat_template: bool = Field(description="The tokenizer has a chat template.")
    judging: bool = Field(False, description="The engine can score judge labels.")
    tokenizer_sha256: str | None = Field(
        None, description="SHA-256 of the registered tokenizer.json (null: none registered)."
    )


class ModelList(BaseModel):
    """GET /v1/models."""

    models: list[ModelInfo]
