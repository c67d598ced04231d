"""The planner behind POST /v1/plan and ``probeval plan``: draws per prompt for a question fixed
in advance (``shared.stats.sample_size``), the expected draws with adaptive stopping at a stated
true P(leak) (a seeded simulation of the service's stopping rule, ``shared.stats.stopping``),
and what they cost on the live fleet."""

from __future__ import annotations

import numpy as np

from shared.errors import InvalidInput
from shared.schemas import PlanAdaptive, PlanCost, PlanRequest, PlanResponse
from shared.stats.sample_size import certify_n, leak_at_k_level_to_tau, leak_at_k_n, mean_width_n
from shared.stats.stopping import StoppingRule, check_rule, run_stream

ADAPTIVE_RUNS = 100
MAX_ROUNDS = 1000

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


def adaptive_draws(req: PlanRequest, n: int) -> PlanAdaptive | None:
    """Simulate the service's adaptive rule (p_full below tau) at ``assumed_p``, seeded."""
    if req.assumed_p is None:
        return None
    if req.target == "mean_width":
        raise InvalidInput(
            "assumed_p: only targets certify and leak_at_k simulate adaptive stopping",
            param="assumed_p",
        )
    if req.target == "certify":
        assert req.tau is not None
        tau = req.tau
    else:
        assert req.k is not None and req.level is not None
        tau = leak_at_k_level_to_tau(req.level, req.k)
    max_n = req.max_n or 4 * n
    if max_n > MAX_ROUNDS * req.round:  # the simulation's cost is runs x rounds
        raise InvalidInput(
            f"round: {max_n} draws in rounds of {req.round} are more than {MAX_ROUNDS} rounds; "
            f"allowed: round >= max_n / {MAX_ROUNDS} = {-(-max_n // MAX_ROUNDS)}",
            param="round",
        )
    rule = StoppingRule(
        target="p_full", threshold=tau, width=None, min_n=1, max_n=max_n, round=req.round
    )
    check_rule(rule, prefix="", max_n_limit=1_000_000)
    rng = np.random.default_rng(0)
    stops = np.empty(ADAPTIVE_RUNS)
    below = 0
    for i in range(ADAPTIVE_RUNS):
        state = run_stream((rng.random(max_n) < req.assumed_p).astype(np.float64), rule, req.alpha)
        stops[i] = state.n
        below += state.decision == "below"
    return PlanAdaptive(
        assumed_p=req.assumed_p,
        round=req.round,
        max_n=max_n,
        runs=ADAPTIVE_RUNS,
        expected_n=float(stops.mean()),
        expected_n_se=float(stops.std(ddof=1) / np.sqrt(ADAPTIVE_RUNS)),
        certified_share=below / ADAPTIVE_RUNS,
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
        adaptive=adaptive_draws(req, n),
        cost=cost,
    )
