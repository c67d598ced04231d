"""Decisions made with the bounds: compare two jobs, plan how many draws to buy."""

from __future__ import annotations

from fastapi import APIRouter

from services.gateway.beyond_schema import PLAN_RULES, openapi_extra
from services.gateway.deps import SettingsDep, StoreDep, TenantDep
from services.gateway.errors import ERROR_RESPONSES
from shared.comparison import compare_jobs
from shared.draw_budget import plan
from shared.errors import NotFound
from shared.metrics import measured_throughput
from shared.schemas import CompareRequest, CompareResponse, PlanRequest, PlanResponse

router = APIRouter(prefix="/v1", tags=["decisions"], responses=ERROR_RESPONSES)


@router.post(
    "/compare",
    summary="Per-prompt differences between two succeeded jobs, with family-wise decisions",
)
def compare(body: CompareRequest, store: StoreDep, tenant: TenantDep) -> CompareResponse:
    """Per-prompt intervals on b minus a of two succeeded jobs of the caller."""
    try:
        a = store.get_job(body.a, tenant=tenant)
    except NotFound:
        raise NotFound(f"a: no job with id {body.a!r}", param="a") from None
    try:
        b = store.get_job(body.b, tenant=tenant)
    except NotFound:
        raise NotFound(f"b: no job with id {body.b!r}", param="b") from None
    return compare_jobs(store, a, b, body)


@router.post(
    "/plan",
    summary="Draws per prompt a question needs, and their cost on live samplers",
    openapi_extra=openapi_extra(PLAN_RULES),
)
def plan_draws(
    body: PlanRequest, store: StoreDep, settings: SettingsDep, tenant: TenantDep
) -> PlanResponse:
    """Draws per prompt the question needs; with ``model``, their time on its live samplers."""
    if body.model is None:
        return plan(body)
    live = {m.name: m.workers for m in store.live_models(ttl_s=settings.worker_ttl_s)}
    if body.model not in live:
        served = ", ".join(sorted(live)) or "(none)"
        raise NotFound(
            f"model: no live sampler serves {body.model!r}; served models: {served}",
            param="model",
        )
    draws, seconds = measured_throughput(store.r, body.model)
    return plan(body, workers=live[body.model], draws=draws, seconds=seconds)
