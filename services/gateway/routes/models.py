"""Models served by live sampler workers."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from services.gateway.deps import SettingsDep, StoreDep, get_tenant
from shared.schemas import ModelList

router = APIRouter(prefix="/v1", tags=["models"], dependencies=[Depends(get_tenant)])


@router.get("/models", summary="Models that live sampler workers serve")
def list_models(store: StoreDep, settings: SettingsDep) -> ModelList:
    return ModelList(models=store.live_models(ttl_s=settings.worker_ttl_s))
