"""Liveness and readiness."""

from __future__ import annotations

import redis
from fastapi import APIRouter
from fastapi.responses import JSONResponse

from services.gateway.deps import StoreDep
from services.gateway.errors import error_response

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is up")
def healthz() -> dict[str, str]:
    """Liveness: answers while the process serves, whatever Redis does."""
    return {"status": "ok"}


@router.get("/readyz", summary="Redis answers", responses={503: {"description": "Redis is down"}})
def readyz(store: StoreDep) -> JSONResponse:
    """Readiness: 200 when Redis answers a ping, else 503 in the error shape."""
    try:
        store.r.ping()
    except redis.RedisError as exc:
        return error_response(503, "unavailable", f"Redis does not answer: {exc}")
    return JSONResponse({"status": "ready"})
