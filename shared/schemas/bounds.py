"""Bounds: the row contract shared by `probeval bounds`, POST /v1/bounds and job results,
and the options every bounds computation takes.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from shared.schemas.strict import _Strict
from shared.stats.leak import MAX_K


class BinaryBounds(_Strict):
    """Clopper-Pearson bounds on P(X = 1) (paper: M_bin); only for rows of exact 0/1 scores."""

    k: int = Field(description="Number of draws that scored exactly 1.")
    upper: float = Field(description="One-sided upper bound on P(X = 1) at level 1 - alpha.")
    lower: float = Field(description="One-sided lower bound on P(X = 1) at level 1 - alpha.")


class ExpectationBounds(_Strict):
    """Anderson's DKW bounds on E[X] from order statistics, exact (paper: M_mu).

    NOT A TWO-SIDED INTERVAL: ``lower`` and ``upper`` are two separate one-sided bounds, each at
    1 - alpha, so [lower, upper] holds only at 1 - 2 alpha. For a two-sided interval at
    1 - alpha use ``betting`` (or request alpha / 2)."""

    lower: float = Field(
        description="One-sided lower bound on E[X] at level 1 - alpha (alone; with upper the "
        "pair holds at 1 - 2 alpha)."
    )
    upper: float = Field(
        description="One-sided upper bound on E[X] at level 1 - alpha (alone; with lower the "
        "pair holds at 1 - 2 alpha)."
    )


class StdBounds(_Strict):
    """Upper bound on sd(X) from the two-sided DKW band at alpha (paper: M_sigma)."""

    upper: float = Field(description="Upper bound on the standard deviation at level 1 - alpha.")


class EdBounds(_Strict):
    """Mean upper bound plus lambda times sd upper bound, joint at 1 - alpha (paper: M_ED)."""

    lambda_: float = Field(alias="lambda", description="The weight lambda of the sd term.")
    upper: float = Field(description="Upper bound on E[X] + lambda * sd(X) at level 1 - alpha.")

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class SurvivalBound(_Strict):
    """Bounds on P(X > x): the one-sided DKW upper bound (paper: M_gen), joint over all
    thresholds, and Clopper-Pearson on the count #{X_i > x}, exact for this one threshold."""

    x: float = Field(description="The threshold x.")
    upper: float = Field(description="DKW upper bound on P(X > x) at level 1 - alpha.")
    cp_lower: float | None = Field(
        None,
        description="One-sided Clopper-Pearson lower bound on P(X > x) at 1 - alpha, valid for "
        "this threshold alone (chosen before sampling).",
    )
    cp_upper: float | None = Field(
        None,
        description="One-sided Clopper-Pearson upper bound on P(X > x) at 1 - alpha, valid for "
        "this threshold alone (chosen before sampling); tighter than `upper` for small tails.",
    )


class QuantileBound(_Strict):
    """Bounds on the q-quantile of X: the upper from the one-sided DKW band, the lower from
    binomial order statistics (exact for this level alone)."""

    q: float = Field(description="The quantile level q.")
    upper: float = Field(description="Upper bound on the q-quantile at level 1 - alpha.")
    lower: float | None = Field(
        None,
        description="One-sided lower bound on the q-quantile at 1 - alpha: the order statistic "
        "x_(j), j - 1 the largest i with P(Binomial(n, q) <= i) <= alpha (0 if none).",
    )


class LeakBounds(_Strict):
    """Clopper-Pearson bounds on p = P(X >= leak_at), the chance that one draw leaks."""

    threshold: float = Field(description="leak_at: a draw with score >= it counts as a leak.")
    c: int = Field(description="Draws that leaked.")
    lower: float = Field(description="One-sided lower bound on p at level 1 - alpha.")
    upper: float = Field(description="One-sided upper bound on p at level 1 - alpha.")


class LeakAtKBound(_Strict):
    """leak@k = 1 - (1 - p)^k: the chance that k independent draws contain a leak."""

    k: int = Field(description="Number of draws of the attacker.")
    estimate: float | None = Field(
        description="Unbiased estimate 1 - C(n - c, k) / C(n, k); null when k > n (no unbiased "
        "estimator exists from n draws)."
    )
    lower: float = Field(description="1 - (1 - p_lower)^k: one-sided at 1 - alpha (exact).")
    upper: float = Field(description="1 - (1 - p_upper)^k: one-sided at 1 - alpha (exact).")


class BettingBounds(_Strict):
    """Waudby-Smith & Ramdas hedged-capital betting interval for E[X] (fixed n)."""

    lower: float = Field(description="Lower end of the two-sided interval at level 1 - alpha.")
    upper: float = Field(description="Upper end of the two-sided interval at level 1 - alpha.")


class BoundsRow(BaseModel):
    """All bounds for one row of scores (the n draws of one prompt)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    n: int = Field(description="Number of draws in the row.")
    mean: float = Field(description="Sample mean of the scores.")
    binary: BinaryBounds | None = Field(description="Only when every score is exactly 0 or 1.")
    expectation: ExpectationBounds
    std: StdBounds
    ed: EdBounds
    survival: list[SurvivalBound]
    quantiles: list[QuantileBound]
    betting: BettingBounds
    leak: LeakBounds | None = None
    leak_at_k: list[LeakAtKBound] = Field(default_factory=list)


# A score, threshold or quantile level: a finite number in the closed unit interval.
UnitLevel = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]
# The k of leak@k: attacker draws.
KValue = Annotated[int, Field(ge=1, le=MAX_K)]


class BoundsOptions(_Strict):
    """The options every bounds computation takes, and their limits: the one definition (the
    CLI's flags and POST /v1/bounds and /v1/jobs are all derived from this model)."""

    alpha: float = Field(
        0.01, gt=0.0, le=0.5, description="Error level in (0, 0.5]; bounds hold at 1 - alpha."
    )
    thresholds: list[UnitLevel] = Field(
        default_factory=list,
        max_length=64,
        description="Thresholds x in [0, 1] for upper bounds on P(X > x); at most 64.",
    )
    quantiles: list[UnitLevel] = Field(
        default_factory=list,
        max_length=64,
        description="Quantile levels q in [0, 1] for upper bounds on the q-quantile; at most 64.",
    )
    ed_lambda: float = Field(
        1.0, ge=0.0, le=1e6, description="Weight lambda in [0, 1e6] of ed = mean + lambda * sd."
    )
    k: list[KValue] = Field(
        default_factory=lambda: [1, 10, 100],
        max_length=16,
        description=f"Attacker draws k for leak@k, each an integer in [1, {MAX_K}]; at most 16.",
    )
    leak_at: float = Field(
        1.0,
        ge=0.0,
        le=1.0,
        description="Score in [0, 1] at or above which a draw counts as a leak.",
    )

    def options(self) -> BoundsOptions:
        """Just the bound options of this model (a job or a request carries more fields)."""
        return BoundsOptions.model_validate(
            {name: getattr(self, name) for name in BoundsOptions.model_fields}
        )


class BoundsRequest(BoundsOptions):
    """POST /v1/bounds: scores the caller already has."""

    # The row rules are in the schema (a client generated from it sends no empty row and no
    # score outside [0, 1]); compute_bounds checks them again for its other callers.
    scores: list[Annotated[list[UnitLevel], Field(min_length=1)]] = Field(
        min_length=1, description="One row per prompt, each a non-empty list of scores in [0, 1]."
    )


class BoundsResponse(BaseModel):
    """Bounds per row, in input order, with the assumptions they rest on."""

    alpha: float
    rows: list[BoundsRow]
    assumptions: str = Field(
        description="What the guarantees assume: i.i.d. draws, scores in [0, 1], alpha, the "
        "sidedness of each bound and whether it holds under optional stopping."
    )
