"""Dependencies of the routes, each defined once as an ``Annotated`` alias."""

from __future__ import annotations

from typing import Annotated

import redis
from fastapi import Depends, Request
from fastapi.security import HTTPBearer

from services.gateway.auth import ANONYMOUS, KeyRing
from services.gateway.events import JobWatcher
from services.gateway.submission import Submitter
from shared.async_store import AsyncStore
from shared.config import Settings
from shared.errors import Unauthorized
from shared.store import Store

# Async although they do no I/O: FastAPI runs a sync dependency on the thread pool, a hop per
# request that costs more than the function.


async def app_settings(request: Request) -> Settings:
    """Dependency: the settings the app was created with."""
    settings: Settings = request.app.state.settings
    return settings


async def get_store(request: Request) -> Store:
    """Dependency: the app's blocking store (for routes run in the thread pool)."""
    store: Store = request.app.state.store
    return store


async def get_async_store(request: Request) -> AsyncStore:
    """Dependency: the app's asyncio store, made in the serving event loop."""
    store: AsyncStore = request.app.state.async_store
    return store


async def get_submitter(request: Request) -> Submitter:
    """Dependency: the app's job submitter."""
    submitter: Submitter = request.app.state.submitter
    return submitter


async def get_rq(request: Request) -> redis.Redis:
    """Dependency: the app's Redis connection for RQ (bytes replies, as RQ expects)."""
    conn: redis.Redis = request.app.state.rq
    return conn


async def get_watcher(request: Request) -> JobWatcher:
    """Dependency: the app's one job watcher that feeds every SSE stream."""
    watcher: JobWatcher = request.app.state.watcher
    return watcher


class TenantKey(HTTPBearer):
    """The caller's tenant from `Authorization: Bearer KEY`; anonymous when auth is off.

    The security scheme resolves the key itself: one dependency per request where a scheme
    and a resolver on top of it were two, and FastAPI's solving of each dependency cost more
    than the lookup (~20% of a poll's CPU, measured in process)."""

    async def __call__(self, request: Request) -> str:  # type: ignore[override]
        ring: KeyRing = request.app.state.keys
        if not ring.enabled:
            return ANONYMOUS
        credentials = await super().__call__(request)  # None unless `Bearer <key>`
        if credentials is None:
            raise Unauthorized(
                "missing API key: send `Authorization: Bearer KEY`", param="Authorization"
            )
        tenant = ring.tenant_for(credentials.credentials)
        if tenant is None:
            raise Unauthorized("invalid API key", param="Authorization")
        return tenant


# Named as the plain HTTPBearer was, so the OpenAPI document keeps its security scheme's name.
get_tenant = TenantKey(
    auto_error=False, scheme_name="HTTPBearer", description="API key of your tenant."
)


SettingsDep = Annotated[Settings, Depends(app_settings)]
StoreDep = Annotated[Store, Depends(get_store)]
AsyncStoreDep = Annotated[AsyncStore, Depends(get_async_store)]
SubmitterDep = Annotated[Submitter, Depends(get_submitter)]
RqDep = Annotated[redis.Redis, Depends(get_rq)]
TenantDep = Annotated[str, Depends(get_tenant)]
WatcherDep = Annotated[JobWatcher, Depends(get_watcher)]
