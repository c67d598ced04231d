"""Bounds for scores the caller already has."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from services.gateway.deps import get_tenant
from services.gateway.errors import ERROR_RESPONSES
from shared.bounds import compute_bounds
from shared.schemas import BoundsRequest, BoundsResponse

router = APIRouter(prefix="/v1", tags=["bounds"], dependencies=[Depends(get_tenant)])


@router.post(
    "/bounds",
    summary="The `probeval bounds` computation over HTTP",
    responses=ERROR_RESPONSES,
    response_model_by_alias=True,
)
def bounds(body: BoundsRequest) -> BoundsResponse:
    """Bounds on scores sent in the request, as a job's results would state them."""
    return compute_bounds(body.scores, body.options())
