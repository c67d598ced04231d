"""The one conftest: a private redis-server on a free loopback port for the whole session,
flushed around every test that uses it, so tests never touch a Redis they did not start.

Fixtures shared by several folders live in ``tests/fixtures/`` and are loaded here as plugins,
so no test module imports a conftest and each fixture is defined once.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from probeval.local import ProcessGroup, free_port, start_redis
from shared.store import Store, connect

# stacks before reliability, which imports it (so pytest can rewrite its asserts).
pytest_plugins = [
    "tests.fixtures.stacks",
    "tests.fixtures.reliability",
    "tests.fixtures.gateway",
    "tests.fixtures.deploy",
    "tests.fixtures.s3",
]


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("redis")
    group = ProcessGroup(root / "logs")
    url = start_redis(group, root / "data", free_port(), appendonly=False)
    try:
        yield url
    finally:
        group.stop()


@pytest.fixture()
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = connect(redis_url)
    client.flushdb()
    try:
        yield client
    finally:
        client.flushdb()
        client.close()


@pytest.fixture()
def store(redis_client: redis.Redis) -> Store:
    return Store(redis_client, retention_s=3600)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random-weight Llama built by the repo's own script (no download)."""
    from probeval.tiny_model import build_tiny_model

    return Path(build_tiny_model(tmp_path_factory.mktemp("model") / "tiny-llama", seed=0))
