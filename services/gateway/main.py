"""The gateway's app factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.routing import APIRoute

from services.gateway.auth import KeyRing
from services.gateway.errors import install_error_handlers
from services.gateway.events import JobWatcher
from services.gateway.middleware import BodySizeLimit
from services.gateway.query_params import UnknownQueryParams
from services.gateway.routes import (
    bounds,
    decisions,
    events,
    exports,
    health,
    job_data,
    jobs,
    metrics,
    models,
)
from services.gateway.submission import Submitter
from services.gateway.ui import install_ui
from shared.async_store import AsyncStore, connect_async
from shared.config import Settings, get_settings
from shared.queues import rq_connection
from shared.store import Store, connect


def create_app(settings: Settings | None = None) -> FastAPI:
    """The gateway app: routes, error handlers, middleware and its Redis clients."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # An asyncio client belongs to one event loop: made here, in the loop that serves.
        async_store = AsyncStore(
            connect_async(settings.redis_url), retention_s=settings.retention_s
        )
        app.state.async_store = async_store
        app.state.submitter = Submitter(settings, async_store, app.state.store, app.state.rq)
        try:
            yield
        finally:
            await async_store.aclose()

    app = FastAPI(
        lifespan=lifespan,
        title="probeval",
        version="0.1.0",
        description="Evaluate LLMs by their output distribution: many sampled draws per prompt "
        "and distribution-free bounds on what the model says.",
    )
    app.state.settings = settings
    app.state.store = Store(
        connect(settings.redis_url),
        retention_s=settings.retention_s,
        archive_options=settings.archive_options,
    )
    app.state.rq = rq_connection(settings.redis_url)
    app.state.keys = KeyRing.from_settings(settings)
    app.state.watcher = JobWatcher(app.state.store)
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    # An undeclared query parameter is a 422, never silently ignored (every documented route).
    app.add_middleware(UnknownQueryParams, routes=app.router.routes)
    # Outermost, so the latency histogram sees every request, rejected ones included.
    metrics.install_request_metrics(app)
    for module in (health, models, jobs, job_data, events, exports, bounds, decisions, metrics):
        app.include_router(module.router)
    install_ui(app)
    hot_routes_first(app, HOT_ROUTES)
    return app


# Most of the traffic (docs/BENCHMARKS.md): Starlette tries routes in order, ~3 us each.
HOT_ROUTES = (("POST", "/v1/jobs"), ("GET", "/v1/jobs/{job_id}"))


def hot_routes_first(app: FastAPI, hot: tuple[tuple[str, str], ...]) -> None:
    """Move the ``(method, path)`` routes to the front of the router, in that order. Their
    patterns match no other route's paths, so no route is shadowed; a request for another method
    on their paths is still found further down (a partial match does not stop the search)."""
    routes = app.router.routes
    found = [
        r
        for method, path in hot
        for r in routes
        if isinstance(r, APIRoute) and r.path == path and method in r.methods
    ]
    assert len(found) == len(hot), f"hot routes missing: {hot}"
    for route in found:
        routes.remove(route)
    routes[0:0] = found
