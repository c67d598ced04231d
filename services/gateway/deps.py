"""Dependencies of the routes, each defined once as an ``Annotated`` alias."""

from __future__ import annotations

from typing import Annotated

import redis
from fastapi import Depends, Request

from shared.config import Settings
from shared.store import Store


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def get_rq(request: Request) -> redis.Redis:
    conn: redis.Redis = request.app.state.rq
    return conn


SettingsDep = Annotated[Settings, Depends(get_settings)]
StoreDep = Annotated[Store, Depends(get_store)]
RqDep = Annotated[redis.Redis, Depends(get_rq)]
