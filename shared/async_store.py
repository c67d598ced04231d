"""The gateway's hot paths on redis.asyncio: admit a job (and enqueue its chunks), read a job's
view. One round trip each (docs/design/pipeline.md). Everything else, and every worker,
uses the synchronous ``shared.store.Store``; both run the same script and read the same fields
(``shared.job_record``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import hiredis
import redis
import redis.asyncio
from redis.connection import HiredisRespSerializer

from shared import keys
from shared.job_record import (
    ADMIT_JOB,
    VIEW_FIELDS,
    Admission,
    admit_args,
    admit_keys,
    parse_admission,
    view_from_fields,
)
from shared.queues import StagedChunks
from shared.schemas import ChunkTask, JobCreate, JobView

AsyncRedis = redis.asyncio.Redis


class _HiredisPacking:
    """Packs commands with hiredis (C), as redis-py's synchronous client does when hiredis is
    installed; its asyncio connections pack in Python, which was the largest single cost of a
    submit (the job record, the chunk plan, the RQ records). A command whose arguments hiredis
    takes as they are (str, bytes, int, float) goes to it directly: redis-py's serializer first
    copies the arguments through a generator (packing the admission step's 158 arguments, as
    they were, took 59 us that way and 45 us directly, timeit at load 1.5)."""

    def pack_command(self, *args: Any) -> list[bytes]:
        name = args[0]
        if isinstance(name, str) and " " not in name:  # no 'SCRIPT LOAD' to split
            try:
                return [hiredis.pack_command(args)]
            except TypeError:  # a bytearray (redis-py converts it) or what it refuses (DataError)
                pass
        return list(_PACKER.pack(*args))


_PACKER = HiredisRespSerializer()


# The longest an AsyncStore call waits for Redis: redis-py's own default socket timeout.
CALL_TIMEOUT_S = 5.0


def connect_async(url: str) -> AsyncRedis:
    """An asyncio client for the store (decoded strings), bound to the loop that first uses it.

    Without a socket timeout: redis-py's asyncio client would wrap every write in
    ``asyncio.wait_for`` (a task per command, ~25 us of a submit's ~0.8 ms of CPU); each
    ``AsyncStore`` call is bounded by one ``asyncio.timeout`` of ``CALL_TIMEOUT_S`` instead.
    """
    client = redis.asyncio.Redis.from_url(
        url,
        decode_responses=True,
        health_check_interval=30,
        socket_timeout=None,
        socket_connect_timeout=CALL_TIMEOUT_S,
    )
    pool = client.connection_pool
    # Keep the URL's connection kind (TCP, TLS, unix socket); only the packing changes.
    pool.connection_class = type(
        f"Hiredis{pool.connection_class.__name__}", (_HiredisPacking, pool.connection_class), {}
    )
    return client


class AsyncStore:
    """Jobs in Redis, for the gateway's event loop; every key comes from ``shared.keys``."""

    def __init__(
        self, client: AsyncRedis, *, retention_s: int, timeout_s: float = CALL_TIMEOUT_S
    ) -> None:
        self.r = client
        self.retention_s = retention_s
        self.timeout_s = timeout_s
        self._admit = client.register_script(ADMIT_JOB)

    @asynccontextmanager
    async def _deadline(self) -> AsyncIterator[None]:
        """At most ``timeout_s`` for one call, however many commands it sends. A call cut off
        mid-command leaves no half-read connection: redis-py disconnects it."""
        try:
            async with asyncio.timeout(self.timeout_s):
                yield
        except TimeoutError as exc:  # asyncio's; redis.TimeoutError is a RedisError (a 503)
            raise redis.TimeoutError(f"Redis did not answer in {self.timeout_s} s") from exc

    async def create_job(
        self,
        job_id: str,
        spec: JobCreate,
        chunks: Sequence[ChunkTask],
        *,
        tenant: str,
        max_active: int | None,
        live_after: float | None,
        chunk_max_n: int | None = None,
        enqueue: StagedChunks | None = None,
    ) -> Admission:
        """``Store.create_job`` on this client: one EVALSHA (EVAL once per script load)."""
        args = admit_args(
            job_id,
            spec,
            chunks,
            tenant=tenant,
            now=time.time(),
            retention_s=self.retention_s,
            max_active=max_active,
            live_after=live_after,
            chunk_max_n=chunk_max_n,
            enqueue=enqueue,
        )
        async with self._deadline():
            reply = await self._admit(keys=admit_keys(job_id, spec.model, tenant), args=args)
        return parse_admission(reply)

    async def job_view(self, job_id: str, *, tenant: str | None) -> JobView:
        """What GET /v1/jobs/{id} returns: one HMGET of the record's small fields."""
        async with self._deadline():
            raw = await self.r.hmget(keys.job(job_id), list(VIEW_FIELDS))
        values = [None if v is None else str(v) for v in raw]
        spec = None
        if values[0] is not None and values[VIEW_FIELDS.index("model")] is None:
            # A record written before the model had a field of its own: read the spec.
            async with self._deadline():
                raw_spec = await self.r.hget(keys.job(job_id), "spec")
            spec = JobCreate.model_validate_json(raw_spec) if raw_spec else None
        return view_from_fields(job_id, values, tenant=tenant, spec=spec)

    async def aclose(self) -> None:
        await self.r.aclose()
