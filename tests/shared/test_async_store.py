"""The gateway's asyncio store bounds each call with one deadline (shared/async_store.py), not
redis-py's per-write socket timeout: a Redis that accepts the connection and never answers makes
the call fail with redis.TimeoutError (the gateway's 503) after the deadline, not hang."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest
import redis

from shared.async_store import AsyncStore, connect_async
from shared.errors import NotFound


def test_a_silent_redis_fails_the_call_after_its_deadline() -> None:
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # accepts (the kernel completes the handshake) and never answers
    url = f"redis://127.0.0.1:{silent.getsockname()[1]}/0"

    async def poll() -> float:
        store = AsyncStore(connect_async(url), retention_s=60, timeout_s=0.3)
        assert store.r.connection_pool.connection_kwargs["socket_timeout"] is None
        start = time.monotonic()
        try:
            with pytest.raises(redis.TimeoutError, match=r"did not answer in 0\.3 s"):
                await store.job_view("j", tenant=None)
            return time.monotonic() - start
        finally:
            await store.r.aclose(close_connection_pool=True)

    try:
        assert 0.25 <= asyncio.run(poll()) < 3.0
    finally:
        silent.close()


def test_calls_answer_within_the_deadline(redis_url: str) -> None:
    async def poll() -> None:
        store = AsyncStore(connect_async(redis_url), retention_s=60, timeout_s=0.3)
        try:
            with pytest.raises(NotFound, match="no job with id"):
                await store.job_view("missing", tenant=None)
        finally:
            await store.aclose()

    asyncio.run(poll())
