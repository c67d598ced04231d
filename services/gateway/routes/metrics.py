"""GET /metrics (Prometheus text format) and the request-latency histogram.

``create_app`` installs both::

    install_request_metrics(app)        # after the other add_middleware calls: outermost
    app.include_router(metrics.router)

The scrape joins this process's own metrics (request latencies, process and GC) with the
cluster's state read from Redis (``shared.metrics.RedisStateCollector``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

from fastapi import APIRouter, FastAPI, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.core import Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from services.gateway.deps import RqDep, SettingsDep
from services.gateway.middleware import LATENCY_BUCKETS, RequestMetrics
from shared.metrics import RedisStateCollector

__all__ = ["install_request_metrics", "router"]

router = APIRouter(tags=["metrics"])


def install_request_metrics(app: FastAPI) -> CollectorRegistry:
    """Add the latency middleware and this process's registry (``app.state.metrics_registry``).

    Call it after the app's other ``add_middleware`` calls so that it is the outermost one and
    also times requests those middlewares answer themselves (413, for instance).
    """
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    histogram = Histogram(
        "probeval_http_request_duration_seconds",
        "Time from request to the end of the response, per route template.",
        labelnames=("method", "route", "status"),
        buckets=LATENCY_BUCKETS,
        registry=registry,
    )
    app.add_middleware(RequestMetrics, histogram=histogram)
    app.state.metrics_registry = registry
    return registry


class _Scrape(Collector):
    """Several collectors exposed as one (what ``generate_latest`` walks)."""

    def __init__(self, *sources: Any) -> None:
        self.sources = sources

    def collect(self) -> Iterable[Metric]:
        for source in self.sources:
            yield from source.collect()


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={
        200: {
            "content": {CONTENT_TYPE_LATEST: {}},
            "description": "Prometheus text format, or OpenMetrics when the Accept header asks.",
        }
    },
)
def metrics(request: Request, rq: RqDep, settings: SettingsDep) -> Response:
    own = getattr(request.app.state, "metrics_registry", None)
    state = RedisStateCollector(rq, worker_ttl_s=settings.worker_ttl_s)
    scrape = _Scrape(*([own] if own is not None else []), state)
    # Prometheus asks for OpenMetrics when it can read it (exemplars, _created series).
    encode, content_type = choose_encoder(request.headers.get("accept", ""))
    body = encode(cast(CollectorRegistry, scrape))
    return Response(content=body, headers={"Content-Type": content_type})
