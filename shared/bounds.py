"""The one bounds computation behind ``probeval bounds``, POST /v1/bounds and job results.

``compute_bounds`` turns rows of scores into the ``BoundsResponse`` contract; the gateway, the
scorer worker and the CLI all call it, so the numbers are identical everywhere.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from shared.schemas import (
    BettingBounds,
    BinaryBounds,
    BoundsOptions,
    BoundsResponse,
    BoundsRow,
    EdBounds,
    ExpectationBounds,
    QuantileBound,
    StdBounds,
    SurvivalBound,
)
from shared.stats import BoundsTable, bound_rows
from shared.stats.rows import _groups

__all__ = ["ASSUMPTIONS", "compute_bounds", "rows_from_table", "validate_rows"]

ASSUMPTIONS = (
    "Each row is i.i.d. draws of a score in [0, 1] for one prompt and one decoding setup, with n "
    "fixed before sampling (for adaptive stopping use the confidence sequences); every bound "
    "holds with probability >= 1 - alpha for that row alone (use alpha/m for m rows at once). "
    "One-sided at 1 - alpha each: binary (Clopper-Pearson), expectation (Anderson/DKW), survival "
    "and quantile uppers (one DKW band, joint over thresholds and levels). From the two-sided "
    "DKW band at alpha, jointly: std.upper and ed.upper. betting: two-sided interval at "
    "1 - alpha (Waudby-Smith & Ramdas hedged capital, draws used in the given order)."
)


def validate_rows(rows: Sequence[Sequence[float]] | NDArray[np.floating]) -> None:
    """Raise ``InvalidInput`` naming ``scores[i]`` and the allowed values if any row is bad.

    Bad means: not a list, empty, or holding a value that is not a finite number in [0, 1].
    """
    _groups(rows, "scores")


def _finite(v: float) -> float:
    # JSON has no NaN/inf; every bound here is finite by construction, this is a tripwire.
    if not math.isfinite(v):
        raise ValueError(f"non-finite bound {v!r}")
    return v


def rows_from_table(table: BoundsTable) -> list[BoundsRow]:
    """Convert the array form into the JSON-contract rows, in input order.

    Rows are built from plain Python values with ``model_construct`` (the numbers were computed
    and checked here, so a second validation pass would only cost time at 10,000 rows).
    """
    cols: dict[str, list[Any]] = {
        name: getattr(table, name).tolist()
        for name in (
            "n",
            "mean",
            "binary",
            "binary_k",
            "binary_lower",
            "binary_upper",
            "expectation_lower",
            "expectation_upper",
            "std_upper",
            "ed_upper",
            "survival_upper",
            "quantile_upper",
            "betting_lower",
            "betting_upper",
        )
    }
    thresholds = table.thresholds.tolist()
    levels = table.quantile_levels.tolist()
    lam = table.ed_lambda
    out: list[BoundsRow] = []
    construct_row = BoundsRow.model_construct
    for i in range(len(table)):
        binary = (
            BinaryBounds.model_construct(
                k=cols["binary_k"][i],
                upper=cols["binary_upper"][i],
                lower=cols["binary_lower"][i],
            )
            if cols["binary"][i]
            else None
        )
        out.append(
            construct_row(
                n=cols["n"][i],
                mean=cols["mean"][i],
                binary=binary,
                expectation=ExpectationBounds.model_construct(
                    lower=cols["expectation_lower"][i], upper=cols["expectation_upper"][i]
                ),
                std=StdBounds.model_construct(upper=cols["std_upper"][i]),
                ed=EdBounds.model_construct(lambda_=lam, upper=_finite(cols["ed_upper"][i])),
                survival=[
                    SurvivalBound.model_construct(x=x, upper=u)
                    for x, u in zip(thresholds, cols["survival_upper"][i], strict=True)
                ],
                quantiles=[
                    QuantileBound.model_construct(q=q, upper=u)
                    for q, u in zip(levels, cols["quantile_upper"][i], strict=True)
                ],
                betting=BettingBounds.model_construct(
                    lower=cols["betting_lower"][i], upper=cols["betting_upper"][i]
                ),
            )
        )
    return out


def compute_bounds(
    rows: Sequence[Sequence[float]] | NDArray[np.floating], options: BoundsOptions
) -> BoundsResponse:
    """Every bound for each row of scores, in input order, as the JSON contract.

    Raises ``shared.errors.InvalidInput`` (param ``scores[i]``, ``alpha``, ...) for bad input.
    """
    table = bound_rows(
        rows,
        alpha=options.alpha,
        thresholds=options.thresholds,
        quantiles=options.quantiles,
        ed_lambda=options.ed_lambda,
        name="scores",
    )
    return BoundsResponse.model_construct(
        alpha=table.alpha, rows=rows_from_table(table), assumptions=ASSUMPTIONS
    )
