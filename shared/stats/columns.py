"""The bound-column registry: each bound of a row of scores, defined once.

A ``Column`` holds everything about one bound except its pydantic JSON shape (that is the
matching field of ``shared.schemas.BoundsRow``, by house rule the one schema): how it is
computed from a group of equal-length rows (vectorised), how one row of it reads in the JSON
contract, and the sentence of the assumptions text that states its sidedness, its level and
whether it survives optional stopping. ``bound_rows`` computes every registered column,
``BoundsTable.documents`` renders them and ``ASSUMPTIONS`` is built from them, so adding a bound
means adding one ``Column`` here (plus its field on ``BoundsRow``; a test checks the two agree).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from shared.stats.betting import betting_interval
from shared.stats.binomial import clopper_pearson
from shared.stats.dkw import (
    anderson_lower_sorted,
    anderson_upper_sorted,
    quantile_upper_sorted,
    survival_upper_sorted,
)
from shared.stats.leak import leak_at_k
from shared.stats.order_statistics import quantile_lower_sorted, survival_cp_sorted
from shared.stats.variance import std_upper_sorted

FloatArray = NDArray[np.float64]
Arrays = Mapping[str, NDArray[Any]]


@dataclass(frozen=True)
class BoundParams:
    """The validated options of one computation (see ``shared.schemas.BoundsOptions``)."""

    alpha: float
    thresholds: FloatArray
    quantile_levels: FloatArray
    ed_lambda: float
    leak_at: float = 1.0
    ks: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))


@dataclass(frozen=True)
class Group:
    """Rows of one length ``n``, stacked: ``x`` in sampling order, ``xs`` sorted per row.

    ``eps1``/``eps2`` are the one- and two-sided DKW band half-widths at ``params.alpha``.
    """

    x: FloatArray
    xs: FloatArray
    n: int
    mean: FloatArray
    eps1: float
    eps2: float
    params: BoundParams


@dataclass(frozen=True)
class Column:
    """One bound: ``compute`` fills the named ``arrays`` for a group (it may read the arrays of
    columns registered before it, passed as ``done``); ``document`` turns the whole table's
    arrays into one JSON value per row; ``assumption`` is its sentence of ``ASSUMPTIONS``."""

    key: str
    arrays: tuple[str, ...]
    compute: Callable[[Group, Arrays], dict[str, NDArray[Any]]]
    document: Callable[[BoundParams, Arrays], list[Any]]
    assumption: str


# ---- the columns ------------------------------------------------------------------------------


def _binary(g: Group, done: Arrays) -> dict[str, NDArray[Any]]:
    # Sorted rows: exact 0/1 means every entry is 0 or 1; k is the count of ones.
    is_bin = ((g.xs == 0.0) | (g.xs == 1.0)).all(axis=1)
    k = np.full(is_bin.size, -1, dtype=np.int64)
    lower = np.full(is_bin.size, np.nan)
    upper = np.full(is_bin.size, np.nan)
    if is_bin.any():
        kb = np.count_nonzero(g.xs[is_bin] == 1.0, axis=1).astype(np.int64)
        cp = clopper_pearson(kb, np.full(kb.size, g.n, dtype=np.int64), alpha=g.params.alpha)
        k[is_bin], lower[is_bin], upper[is_bin] = kb, cp.lower, cp.upper
    return {"binary": is_bin, "binary_k": k, "binary_lower": lower, "binary_upper": upper}


def _binary_doc(p: BoundParams, a: Arrays) -> list[Any]:
    return [
        {"k": k, "upper": up, "lower": lo} if is_bin else None
        for is_bin, k, lo, up in zip(
            a["binary"].tolist(),
            a["binary_k"].tolist(),
            a["binary_lower"].tolist(),
            a["binary_upper"].tolist(),
            strict=True,
        )
    ]


def _expectation(g: Group, done: Arrays) -> dict[str, NDArray[Any]]:
    # Widening to contain the sample mean only guards against rounding (exact maths has it).
    return {
        "expectation_lower": np.minimum(anderson_lower_sorted(g.xs, g.eps1), g.mean),
        "expectation_upper": np.maximum(anderson_upper_sorted(g.xs, g.eps1), g.mean),
    }


def _expectation_doc(p: BoundParams, a: Arrays) -> list[Any]:
    return [
        {"lower": lo, "upper": up}
        for lo, up in zip(
            a["expectation_lower"].tolist(), a["expectation_upper"].tolist(), strict=True
        )
    ]


def _std(g: Group, done: Arrays) -> dict[str, NDArray[Any]]:
    return {"std_upper": std_upper_sorted(g.xs, g.eps2)}


def _std_doc(p: BoundParams, a: Arrays) -> list[Any]:
    return [{"upper": sd} for sd in a["std_upper"].tolist()]


def _ed(g: Group, done: Arrays) -> dict[str, NDArray[Any]]:
    mean_up = np.maximum(anderson_upper_sorted(g.xs, g.eps2), g.mean)
    return {"ed_upper": mean_up + g.params.ed_lambda * done["std_upper"]}


def _ed_doc(p: BoundParams, a: Arrays) -> list[Any]:
    return [{"lambda": p.ed_lambda, "upper": ed} for ed in a["ed_upper"].tolist()]


def _survival(g: Group, done: Arrays) -> dict[str, NDArray[Any]]:
    cp_lower, cp_upper = survival_cp_sorted(g.xs, g.params.thresholds, g.params.alpha)
    return {
        "survival_upper": survival_upper_sorted(g.xs, g.params.thresholds, g.eps1),
        "survival_cp_lower": cp_lower,
        "survival_cp_upper": cp_upper,
    }


def _survival_doc(p: BoundParams, a: Arrays) -> list[Any]:
    xs = p.thresholds.tolist()
    return [
        [
            {"x": x, "upper": u, "cp_lower": lo, "cp_upper": up}
            for x, u, lo, up in zip(xs, row, row_lo, row_up, strict=True)
        ]
        for row, row_lo, row_up in zip(
            a["survival_upper"].tolist(),
            a["survival_cp_lower"].tolist(),
            a["survival_cp_upper"].tolist(),
            strict=True,
        )
    ]


def _quantiles(g: Group, done: Arrays) -> dict[str, NDArray[Any]]:
    levels = g.params.quantile_levels
    return {
        "quantile_upper": quantile_upper_sorted(g.xs, levels, g.eps1),
        "quantile_lower": quantile_lower_sorted(g.xs, levels, g.params.alpha),
    }


def _quantiles_doc(p: BoundParams, a: Arrays) -> list[Any]:
    qs = p.quantile_levels.tolist()
    return [
        [{"q": q, "upper": u, "lower": lo} for q, u, lo in zip(qs, row, row_lo, strict=True)]
        for row, row_lo in zip(
            a["quantile_upper"].tolist(), a["quantile_lower"].tolist(), strict=True
        )
    ]


def _leak(g: Group, done: Arrays) -> dict[str, NDArray[Any]]:
    c = np.count_nonzero(g.xs >= g.params.leak_at, axis=1).astype(np.int64)
    cp = clopper_pearson(c, np.full(c.size, g.n, dtype=np.int64), alpha=g.params.alpha)
    return {"leak_c": c, "leak_lower": cp.lower, "leak_upper": cp.upper}


def _leak_doc(p: BoundParams, a: Arrays) -> list[Any]:
    return [
        {"threshold": p.leak_at, "c": c, "lower": lo, "upper": up}
        for c, lo, up in zip(
            a["leak_c"].tolist(), a["leak_lower"].tolist(), a["leak_upper"].tolist(), strict=True
        )
    ]


def _leak_at_k(g: Group, done: Arrays) -> dict[str, NDArray[Any]]:
    c = done["leak_c"]
    res = leak_at_k(c, np.full(c.size, g.n, dtype=np.int64), g.params.ks, alpha=g.params.alpha)
    return {
        "leak_at_k_estimate": res.estimate,
        "leak_at_k_lower": res.lower,
        "leak_at_k_upper": res.upper,
    }


def _leak_at_k_doc(p: BoundParams, a: Arrays) -> list[Any]:
    ks = p.ks.tolist()
    return [
        [
            # NaN (k > n: no unbiased estimate) is the contract's null.
            {"k": k, "estimate": None if e != e else e, "lower": lo, "upper": up}
            for k, e, lo, up in zip(ks, row_e, row_lo, row_up, strict=True)
        ]
        for row_e, row_lo, row_up in zip(
            a["leak_at_k_estimate"].tolist(),
            a["leak_at_k_lower"].tolist(),
            a["leak_at_k_upper"].tolist(),
            strict=True,
        )
    ]


def _betting(g: Group, done: Arrays) -> dict[str, NDArray[Any]]:
    lo, hi = betting_interval(g.x, alpha=g.params.alpha)
    return {"betting_lower": lo, "betting_upper": hi}


def _betting_doc(p: BoundParams, a: Arrays) -> list[Any]:
    return [
        {"lower": lo, "upper": up}
        for lo, up in zip(a["betting_lower"].tolist(), a["betting_upper"].tolist(), strict=True)
    ]


FIXED_N = "for fixed n only (not under optional stopping)"

# In computation order: a column may read the arrays of the columns above it.
COLUMNS: tuple[Column, ...] = (
    Column(
        "binary",
        ("binary", "binary_k", "binary_lower", "binary_upper"),
        _binary,
        _binary_doc,
        "binary: Clopper-Pearson lower and upper bounds on P(X = 1), each one-sided at "
        f"1 - alpha, exact, {FIXED_N}; only on rows of exact 0/1 scores.",
    ),
    Column(
        "expectation",
        ("expectation_lower", "expectation_upper"),
        _expectation,
        _expectation_doc,
        "expectation: Anderson's bounds on E[X] from the one-sided DKW band, lower and upper "
        "each one-sided at 1 - alpha: NOT a two-sided interval (the pair holds jointly at "
        f"1 - 2 alpha; for a two-sided interval use betting), {FIXED_N}.",
    ),
    Column(
        "std",
        ("std_upper",),
        _std,
        _std_doc,
        f"std: upper bound on sd(X) from the two-sided DKW band at alpha, at 1 - alpha, {FIXED_N}.",
    ),
    Column(
        "ed",
        ("ed_upper",),
        _ed,
        _ed_doc,
        "ed: upper bound on E[X] + lambda * sd(X) from the same two-sided DKW band (joint with "
        f"std at 1 - alpha), {FIXED_N}.",
    ),
    Column(
        "survival",
        ("survival_upper", "survival_cp_lower", "survival_cp_upper"),
        _survival,
        _survival_doc,
        "survival: upper bounds on P(X > x), one-sided at 1 - alpha from one DKW band, joint "
        "over all thresholds (and with quantiles); cp_lower/cp_upper: Clopper-Pearson on "
        "#{X_i > x}, each one-sided at 1 - alpha, exact for each threshold on its own (fixed "
        f"before sampling), {FIXED_N}.",
    ),
    Column(
        "quantiles",
        ("quantile_upper", "quantile_lower"),
        _quantiles,
        _quantiles_doc,
        "quantiles: upper bounds on the q-quantiles from the same one-sided DKW band, joint "
        "over all levels; lower: the binomial order-statistic bound, one-sided at 1 - alpha, "
        f"exact for each level on its own, {FIXED_N}.",
    ),
    Column(
        "betting",
        ("betting_lower", "betting_upper"),
        _betting,
        _betting_doc,
        "betting: two-sided interval on E[X] at 1 - alpha (Waudby-Smith & Ramdas hedged "
        "capital, tightest over t <= n by Ville's inequality, draws used in the given order, "
        "which must be sampling order: sorted rows are refused), for fixed n (the "
        "anytime-valid version is the betting confidence sequence).",
    ),
    Column(
        "leak",
        ("leak_c", "leak_lower", "leak_upper"),
        _leak,
        _leak_doc,
        "leak: Clopper-Pearson lower and upper bounds on p = P(X >= leak_at), each one-sided at "
        f"1 - alpha, exact, {FIXED_N}.",
    ),
    Column(
        "leak_at_k",
        ("leak_at_k_estimate", "leak_at_k_lower", "leak_at_k_upper"),
        _leak_at_k,
        _leak_at_k_doc,
        "leak_at_k: leak@k = 1 - (1 - p)^k; the estimate 1 - C(n - c, k) / C(n, k) is unbiased "
        "(null for k > n); lower/upper are the leak bounds mapped through it, each one-sided at "
        f"1 - alpha, exact, {FIXED_N}.",
    ),
)

ASSUMPTIONS = " ".join(
    (
        "Each row is i.i.d. draws of a score in [0, 1] for one prompt and one decoding setup, in "
        "sampling order, with n fixed before sampling; every bound holds with probability "
        ">= 1 - alpha for that row alone (use alpha/m for m rows at once).",
        *(c.assumption for c in COLUMNS),
    )
)
