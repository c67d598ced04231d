"""Dependencies of the routes, each defined once as an ``Annotated`` alias."""

from __future__ import annotations

from typing import Annotated

import redis
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from services.gateway.auth import ANONYMOUS, KeyRing
from shared.config import Settings
from shared.errors import Unauthorized
from shared.store import Store

_bearer = HTTPBearer(auto_error=False, description="API key of your tenant.")


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def get_rq(request: Request) -> redis.Redis:
    conn: redis.Redis = request.app.state.rq
    return conn


def get_tenant(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    """The caller's tenant from `Authorization: Bearer KEY`; anonymous when auth is off."""
    ring: KeyRing = request.app.state.keys
    if not ring.enabled:
        return ANONYMOUS
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized(
            "missing API key: send `Authorization: Bearer KEY`", param="Authorization"
        )
    tenant = ring.tenant_for(credentials.credentials)
    if tenant is None:
        raise Unauthorized("invalid API key", param="Authorization")
    return tenant


SettingsDep = Annotated[Settings, Depends(get_settings)]
StoreDep = Annotated[Store, Depends(get_store)]
RqDep = Annotated[redis.Redis, Depends(get_rq)]
TenantDep = Annotated[str, Depends(get_tenant)]
