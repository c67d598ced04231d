"""What a worker process builds once and every task of that process reuses: settings, the
store, the RQ connection, and (in a sampler) the generation engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import redis

from shared.config import Settings, get_settings
from shared.queues import rq_connection
from shared.store import Store, connect

if TYPE_CHECKING:
    from workers.sampler.generation import GenerationEngine


@dataclass
class Runtime:
    settings: Settings
    store: Store
    rq: redis.Redis
    engine: GenerationEngine | None = None
    model: str | None = None


_current: Runtime | None = None


def build(settings: Settings) -> Runtime:
    return Runtime(
        settings=settings,
        store=Store(connect(settings.redis_url), retention_s=settings.retention_s),
        rq=rq_connection(settings.redis_url),
    )


def install(runtime: Runtime) -> None:
    global _current
    _current = runtime


def current() -> Runtime:
    """The process's runtime; built from the environment on first use (scorer, callbacks)."""
    global _current
    if _current is None:
        _current = build(get_settings())
    return _current
