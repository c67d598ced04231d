"""The planner behind POST /v1/plan and ``probeval plan``: draws per prompt for a question fixed
in advance (``shared.stats.sample_size``) and what they cost on the live fleet."""

from __future__ import annotations

from shared.errors import InvalidInput
from shared.schemas import PlanCost, PlanRequest, PlanResponse
from shared.stats.sample_size import certify_n, leak_at_k_level_to_tau, leak_at_k_n, mean_width_n

_NEEDS = {"certify": ("tau",), "mean_width": ("width",), "leak_at_k": ("k", "level")}


def draws_needed(req: PlanRequest) -> tuple[int, str]:
    """(n, how it was found and what it guarantees)."""
    for name in _NEEDS[req.target]:
        if getattr(req, name) is None:
            raise InvalidInput(
                f"{name}: target {req.target!r} needs {name!r} (required: "
                f"{', '.join(_NEEDS[req.target])})",
                param=name,
            )
    if req.target == "certify":
        assert req.tau is not None
        n = certify_n(req.tau, alpha=req.alpha, leaks=req.leaks)
        return n, (
            f"Smallest n at which the one-sided Clopper-Pearson upper bound at 1 - {req.alpha:g} "
            f"on P(leak) is below {req.tau:g} when {req.leaks} of the n draws leak (exact; "
            + ("closed form n = floor(ln alpha / ln(1 - tau)) + 1" if req.leaks == 0 else "search")
            + "). More leaks than that and n draws do not certify."
        )
    if req.target == "leak_at_k":
        assert req.k is not None and req.level is not None
        n = leak_at_k_n(req.level, req.k, alpha=req.alpha, leaks=req.leaks)
        tau = leak_at_k_level_to_tau(req.level, req.k)
        return n, (
            f"leak@{req.k} < {req.level:g} iff P(leak) < 1 - (1 - {req.level:g})^(1/{req.k}) = "
            f"{tau:.6g}; then the smallest n whose Clopper-Pearson upper bound at 1 - "
            f"{req.alpha:g} is below it with {req.leaks} leaks (exact, by search)."
        )
    assert req.width is not None
    n = mean_width_n(req.width, alpha=req.alpha)
    return n, (
        f"Smallest n at which the two-sided Anderson/DKW interval on E[score] at 1 - "
        f"{req.alpha:g} (each side at {req.alpha / 2:g}) is at most {req.width:g} wide for any "
        "data: 2 sqrt(ln(2 / alpha) / (2 n)) <= width (by search). The betting interval is "
        "usually narrower, but its width depends on the data."
    )


def plan(
    req: PlanRequest, *, workers: int | None = None, draws: int = 0, seconds: float = 0.0
) -> PlanResponse:
    """The plan; with ``req.model``, priced with its live ``workers`` and measured counters."""
    n, method = draws_needed(req)
    total = n * req.prompts
    cost = None
    if req.model is not None:
        rate = draws / seconds if draws > 0 and seconds > 0.0 else None
        live = workers or 0
        cost = PlanCost(
            model=req.model,
            workers=live,
            draws_per_s_per_worker=rate,
            expected_s=total / (rate * live) if rate is not None and live > 0 else None,
        )
    return PlanResponse(
        target=req.target,
        alpha=req.alpha,
        n=n,
        method=method,
        prompts=req.prompts,
        draws_total=total,
        cost=cost,
    )
