"""The one error shape and the one place that decides HTTP statuses.

Every 4xx/5xx body is ``{"error": {"code", "message", "param"}}``.
"""

from __future__ import annotations

import logging
from typing import Any

import redis
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match, Route

from shared.errors import (
    Conflict,
    InvalidInput,
    LimitExceeded,
    NotFound,
    ProbevalError,
    TooManyRequests,
    Unauthorized,
)
from shared.schemas import SCORER_VARIANTS, ErrorInfo, ErrorResponse

log = logging.getLogger(__name__)


class BodyTooLarge(Exception):
    """Raised while streaming a body past the limit."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(max_bytes)
        self.max_bytes = max_bytes


STATUS_BY_ERROR: dict[type[ProbevalError], int] = {
    InvalidInput: 422,
    LimitExceeded: 422,
    NotFound: 404,
    Conflict: 409,
    Unauthorized: 401,
    TooManyRequests: 429,
}

_CODE_BY_STATUS = {
    400: "bad_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "body_too_large",
    415: "unsupported_media_type",
    422: "invalid_input",
    429: "too_many_requests",
    503: "unavailable",
}

# Documented in OpenAPI on every route that can answer with the error shape.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": code}
    for status, code in (
        (400, "invalid_json"),
        (401, "unauthorized"),
        (404, "not_found"),
        (409, "conflict"),
        (413, "body_too_large"),
        (422, "invalid_input"),
        (429, "too_many_requests"),
        (503, "unavailable"),
    )
}

# The same, for routes whose success response is not JSON (an HTML report): FastAPI would
# otherwise document their error bodies under the route's media type.
ERROR_RESPONSES_JSON: dict[int | str, dict[str, Any]] = {
    status: {
        "description": info["description"],
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}},
    }
    for status, info in ERROR_RESPONSES.items()
}


def error_response(
    status: int,
    code: str,
    message: str,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """A response in the one error shape (``ErrorResponse``) with the given status."""
    body = ErrorResponse(error=ErrorInfo(code=code, message=message, param=param))
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


def _param(loc: tuple[Any, ...], error_type: str = "") -> str | None:
    """('body', 'prompts', 0, 'reference') -> 'prompts[0].reference'.

    The scorer is a union discriminated by ``name``: pydantic puts the chosen tag in the
    location (('body', 'scorer', 'regex', 'pattern')); it is dropped, and a bad or missing tag
    is reported as ``scorer.name``."""
    parts = [p for p in loc if p not in ("body", "query", "path")]
    if len(parts) >= 2 and parts[0] == "scorer" and parts[1] in SCORER_VARIANTS:
        parts = [parts[0], *parts[2:]]
    if error_type in ("union_tag_invalid", "union_tag_not_found") and parts == ["scorer"]:
        parts = ["scorer", "name"]
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or None


async def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    first = errors[0] if errors else {"loc": (), "msg": "invalid request", "type": ""}
    param = _param(tuple(first.get("loc", ())), str(first.get("type", "")))
    if first.get("type") == "json_invalid":
        return error_response(
            400, "invalid_json", f"request body is not valid JSON: {first.get('msg')}", None
        )
    message = f"{param or 'body'}: {first.get('msg')}"
    if first.get("type") == "missing":
        message = f"{param}: field required"
    elif first.get("type") == "extra_forbidden":
        message = f"{param}: unknown field (not part of the schema)"
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
    return error_response(422, "invalid_input", message, param)


async def _on_probeval_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ProbevalError)
    status = next((s for t, s in STATUS_BY_ERROR.items() if isinstance(exc, t)), 500)
    headers: dict[str, str] = {}
    if isinstance(exc, TooManyRequests):
        headers["Retry-After"] = str(exc.retry_after_s)
    if isinstance(exc, Unauthorized):
        headers["WWW-Authenticate"] = "Bearer"
    return error_response(status, exc.code, exc.message, exc.param, headers)


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route accepts on this path. Starlette's 405 names only the methods of
    the first route whose path matched (GET /v1/jobs/{id} hides DELETE /v1/jobs/{id})."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        if isinstance(route, Route) and route.matches(request.scope)[0] != Match.NONE:
            methods |= route.methods or set()
    return sorted(methods)


async def _on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if isinstance(exc.__cause__, BodyTooLarge):
        # FastAPI turns any error while it reads a body param into a 400 (raised from it):
        # a chunked body that streamed past the limit is still a 413.
        return await _on_body_too_large(request, exc.__cause__)
    code = _CODE_BY_STATUS.get(exc.status_code, "http_error")
    headers = dict(exc.headers or {})
    message = str(exc.detail)
    if exc.status_code == 405:
        allowed = _allowed_methods(request)
        headers["Allow"] = ", ".join(allowed)
        message = f"method {request.method} not allowed here; allowed: {', '.join(allowed)}"
    return error_response(exc.status_code, code, message, None, headers)


async def _on_body_too_large(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, BodyTooLarge)
    return error_response(
        413, "body_too_large", f"request body is over the limit of {exc.max_bytes} bytes", None
    )


async def _on_redis_error(request: Request, exc: Exception) -> JSONResponse:
    log.warning("redis unavailable on %s %s: %s", request.method, request.url.path, exc)
    return error_response(
        503,
        "unavailable",
        "the job store (Redis) is unavailable; retry later",
        None,
        {"Retry-After": "5"},
    )


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(500, "internal_error", "internal error; see the gateway log", None)


def install_error_handlers(app: FastAPI) -> None:
    """Map every error the app can raise to the one error shape and its HTTP status."""
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(ProbevalError, _on_probeval_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(BodyTooLarge, _on_body_too_large)
    app.add_exception_handler(redis.RedisError, _on_redis_error)
    app.add_exception_handler(Exception, _on_unexpected)
