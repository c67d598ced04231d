from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from fastapi.testclient import TestClient

from services.gateway.main import create_app
from shared.config import Settings
from shared.store import Store
from tests.helpers import register_model


@pytest.fixture()
def settings(redis_url: str) -> Settings:
    return Settings(
        redis_url=redis_url,
        max_n=2048,
        max_tokens_limit=256,
        max_prompts_per_job=50,
        max_draws_per_job=20_000,
        max_body_bytes=200_000,
        chunk_max_n=64,
        chunk_draws=128,
    )


@pytest.fixture()
def client(settings: Settings, redis_client: redis.Redis, store: Store) -> Iterator[TestClient]:
    register_model(store, "tiny")
    with TestClient(create_app(settings)) as c:
        yield c
