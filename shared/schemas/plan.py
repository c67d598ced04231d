"""Planning draws (POST /v1/plan): the draws per prompt a question needs, and their cost."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.schemas.strict import _Strict
from shared.stats.leak import MAX_K

PlanTarget = Literal["certify", "mean_width", "leak_at_k"]


def _plan_rules(schema: dict[str, Any]) -> None:
    """What each target needs (shared.draw_budget), in the OpenAPI document."""
    number = {"type": "number"}
    schema["oneOf"] = [
        {"properties": {"target": {"const": "certify"}, "tau": number}, "required": ["tau"]},
        {
            "properties": {
                "target": {"const": "mean_width"},
                "width": number,
                # Adaptive stopping is simulated for P(leak) targets only.
                "assumed_p": {"type": "null"},
            },
            "required": ["width"],
        },
        {
            "properties": {
                "target": {"const": "leak_at_k"},
                "k": {"type": "integer"},
                "level": number,
            },
            "required": ["k", "level"],
        },
    ]


class PlanRequest(_Strict):
    """POST /v1/plan: how many draws per prompt a question needs, and what they cost."""

    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra=_plan_rules)

    target: PlanTarget = Field(
        description="certify: P(leak) < tau; mean_width: a two-sided interval on E[score] of "
        "width <= width; leak_at_k: leak@k < level."
    )
    alpha: float = Field(0.01, gt=0.0, le=0.5, description="Error level in (0, 0.5].")
    tau: float | None = Field(None, gt=0.0, lt=1.0, description="certify: the level of P(leak).")
    leaks: int = Field(
        0, ge=0, le=1_000_000, description="certify, leak_at_k: leaking draws allowed for."
    )
    width: float | None = Field(None, gt=0.0, lt=1.0, description="mean_width: the width.")
    k: int | None = Field(None, ge=1, le=MAX_K, description=f"leak_at_k: k in [1, {MAX_K}].")
    level: float | None = Field(None, gt=0.0, lt=1.0, description="leak_at_k: the level.")
    prompts: int = Field(1, ge=1, le=1_000_000, description="Prompts to plan for.")
    assumed_p: float | None = Field(
        None,
        ge=0.0,
        lt=1.0,
        description="certify, leak_at_k: a true P(leak) to simulate adaptive stopping at "
        "(the expected draws per prompt under the job's `stopping` rule).",
    )
    round: int = Field(64, ge=1, le=100_000, description="Adaptive: draws per round.")
    max_n: int | None = Field(
        None, ge=1, le=1_000_000, description="Adaptive: most draws per prompt (default 4 n)."
    )
    model: str | None = Field(
        None, min_length=1, max_length=256, description="A live model to price the draws with."
    )


class PlanCost(BaseModel):
    """Expected time on the live fleet, from the samplers' measured draws per second."""

    model: str
    workers: int = Field(description="Live samplers of the model now.")
    draws_per_s_per_worker: float | None = Field(
        description="Measured: draws generated / seconds inside the engine, over all samplers "
        "since the counters began (null before any draw was generated)."
    )
    expected_s: float | None = Field(
        description="prompts x n / (draws_per_s_per_worker x workers): engine time only, spread "
        "over the live samplers (null without a measurement)."
    )


class PlanAdaptive(BaseModel):
    """Expected draws per prompt with adaptive stopping (``stopping`` with target p_full and
    threshold tau) when P(leak) is ``assumed_p``: a seeded simulation of the service's rule."""

    assumed_p: float
    round: int
    max_n: int
    runs: int = Field(description="Simulated streams (seed 0).")
    expected_n: float = Field(description="Mean draws per prompt at the stop.")
    expected_n_se: float = Field(description="Monte Carlo standard error of expected_n.")
    certified_share: float = Field(
        description="Share of streams that stopped with P(leak) shown below tau."
    )


class PlanResponse(BaseModel):
    """POST /v1/plan: the draws per prompt a target needs, and their cost."""

    target: PlanTarget
    alpha: float
    n: int = Field(description="Draws per prompt needed with n fixed before sampling.")
    method: str = Field(description="How n was found and what it guarantees.")
    prompts: int
    draws_total: int
    adaptive: PlanAdaptive | None = None
    cost: PlanCost | None = None
