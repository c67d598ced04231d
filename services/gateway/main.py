"""The gateway's app factory."""

from __future__ import annotations

from fastapi import FastAPI

from services.gateway.auth import KeyRing
from services.gateway.errors import BodySizeLimit, install_error_handlers
from services.gateway.routes import bounds, decisions, exports, health, jobs, metrics, models
from shared.config import Settings, get_settings
from shared.queues import rq_connection
from shared.store import Store, connect


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPI(
        title="probeval",
        version="0.1.0",
        description="Evaluate LLMs by their output distribution: many sampled draws per prompt "
        "and distribution-free bounds on what the model says.",
    )
    app.state.settings = settings
    app.state.store = Store(connect(settings.redis_url), retention_s=settings.retention_s)
    app.state.rq = rq_connection(settings.redis_url)
    app.state.keys = KeyRing.from_settings(settings)
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    # Outermost, so the latency histogram sees every request, rejected ones included.
    metrics.install_request_metrics(app)
    for module in (health, models, jobs, exports, bounds, decisions, metrics):
        app.include_router(module.router)
    return app
