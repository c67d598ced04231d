"""The gateway's ASGI middleware: the request-body size limit and the request-latency timer.

``create_app`` adds ``BodySizeLimit`` and then (outermost) ``RequestMetrics`` through
``routes.metrics.install_request_metrics``, so the timer also sees the 413s the limit answers.
"""

from __future__ import annotations

import time

from fastapi.responses import JSONResponse
from prometheus_client import Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.gateway.errors import BodyTooLarge, error_response

__all__ = ["LATENCY_BUCKETS", "BodySizeLimit", "RequestMetrics"]


class BodySizeLimit:
    """Answers 413 for bodies over ``max_bytes``, by Content-Length or while streaming."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _too_large(self) -> JSONResponse:
        # Built when needed: building it for every request cost more than the check itself.
        return error_response(
            413, "body_too_large", f"request body is over the limit of {self.max_bytes} bytes", None
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared: int | None = None
        chunked = False
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = None
                if declared is not None and declared > self.max_bytes:
                    await self._too_large()(scope, receive, send)
                    return
            elif name == b"transfer-encoding":
                chunked = True
        if declared is not None and not chunked:
            # The server reads exactly Content-Length bytes of body (what follows is the next
            # request), so a declared length within the limit needs no counting: the two
            # wrappers below cost each request a call per message.
            await self.app(scope, receive, send)
            return
        seen = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await self._too_large()(scope, receive, send)


# Seconds. Most routes answer from Redis in milliseconds; job submission plans chunks and
# enqueues them, results pages can be large.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class RequestMetrics:
    """ASGI middleware: one histogram observation per HTTP request.

    Labelled by the route's path template (``/v1/jobs/{job_id}``), never the raw path, so that
    job ids do not become label values; requests that match no route share ``<unmatched>``.
    """

    def __init__(self, app: ASGIApp, histogram: Histogram) -> None:
        self.app = app
        self.histogram = histogram

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500  # what the client gets if the app raises before it answers

        async def send_and_record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_record_status)
        finally:
            # The router stores the matched route in the (shared) scope while it dispatches.
            route = getattr(scope.get("route"), "path", None) or "<unmatched>"
            self.histogram.labels(scope["method"], route, str(status)).observe(
                time.perf_counter() - start
            )
