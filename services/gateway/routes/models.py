"""Models served by live sampler workers."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from services.gateway.deps import SettingsDep, StoreDep, get_tenant
from services.gateway.errors import ERROR_RESPONSES
from shared.schemas import ModelList

router = APIRouter(
    prefix="/v1",
    tags=["models"],
    dependencies=[Depends(get_tenant)],
    responses={s: ERROR_RESPONSES[s] for s in (401, 503)},
)


@router.get("/models", summary="Models that live sampler workers serve")
def list_models(store: StoreDep, settings: SettingsDep) -> ModelList:
    """The models live samplers serve, with worker counts and engine descriptions."""
    return ModelList(models=store.live_models(ttl_s=settings.worker_ttl_s))
