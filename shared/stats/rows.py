"""Every bound for many rows of scores at once: the vectorised entry point of ``shared.stats``.

A row is the n draws of one prompt (scores in [0, 1]); rows may differ in length. Rows of equal
length are stacked and bounded together, so the Python-level loop runs once per distinct length,
never per row or per sample. Each distinct length costs a fixed ~5 ms of numpy call overhead
(1,000 rows of 1,000 different lengths take ~5 s; 1,000 rows of one length ~0.3 s).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from shared.errors import InvalidInput
from shared.stats.columns import COLUMNS, BoundParams, Group
from shared.stats.dkw import dkw_epsilon
from shared.stats.leak import check_ks
from shared.stats.validation import (
    SCORE_RANGE,
    check_alpha,
    check_ed_lambda,
    check_element_types,
    check_leak_at,
    check_levels,
    check_score_matrix,
    check_scores_in_range,
)

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

RowsLike = Sequence[Sequence[float]] | NDArray[np.floating]


@dataclass(frozen=True)
class BoundsTable:
    """Bounds for many rows as arrays (row i is entry i of each), one set per registered column.

    ``table.<array>`` reads an array of a column (``expectation_upper``, ``binary_k``, ...; see
    ``shared.stats.columns.COLUMNS``); ``binary`` marks rows of exact 0/1 scores, ``binary_k``
    is -1 and the binary bounds NaN elsewhere; ``survival_upper`` has one column per threshold,
    ``quantile_upper`` one per level. ``documents()`` gives the rows of the JSON contract.
    """

    alpha: float
    thresholds: FloatArray
    quantile_levels: FloatArray
    ed_lambda: float
    leak_at: float
    ks: IntArray
    n: IntArray
    mean: FloatArray
    arrays: Mapping[str, NDArray[Any]]

    def __getattr__(self, name: str) -> NDArray[Any]:
        # Only reached for names that are not fields: the columns' arrays.
        arrays = self.__dict__.get("arrays", {})
        if name in arrays:
            return arrays[name]  # type: ignore[no-any-return]
        raise AttributeError(f"BoundsTable has no array {name!r}")

    def __len__(self) -> int:
        return int(self.n.size)

    @property
    def params(self) -> BoundParams:
        return BoundParams(
            self.alpha,
            self.thresholds,
            self.quantile_levels,
            self.ed_lambda,
            self.leak_at,
            self.ks,
        )

    def documents(self) -> list[dict[str, Any]]:
        """The rows as plain dicts with the field names and aliases of ``BoundsRow``."""
        params = self.params
        keys = [c.key for c in COLUMNS]
        per_column = [c.document(params, self.arrays) for c in COLUMNS]
        return [
            {"n": n, "mean": mean, **dict(zip(keys, values, strict=True))}
            for n, mean, *values in zip(
                self.n.tolist(), self.mean.tolist(), *per_column, strict=True
            )
        ]

    def row(self, i: int) -> dict[str, Any]:
        """Row ``i`` as its JSON document (as in ``documents()``)."""
        return self.take([i]).documents()[0]

    def take(self, rows: Sequence[int]) -> BoundsTable:
        """The table of the given rows only."""
        idx = np.asarray(rows, dtype=np.int64)
        return BoundsTable(
            alpha=self.alpha,
            thresholds=self.thresholds,
            quantile_levels=self.quantile_levels,
            ed_lambda=self.ed_lambda,
            leak_at=self.leak_at,
            ks=self.ks,
            n=self.n[idx],
            mean=self.mean[idx],
            arrays={k: v[idx] for k, v in self.arrays.items()},
        )


def group_rows(rows: RowsLike, name: str) -> tuple[IntArray, list[tuple[IntArray, FloatArray]]]:
    """Validate rows; return the lengths and (row indices, stacked rows) per distinct length."""
    if isinstance(rows, np.ndarray):
        matrix = check_score_matrix(rows, name=name)
        n_rows, n = matrix.shape
        return np.full(n_rows, n, dtype=np.int64), [(np.arange(n_rows), matrix)]
    if isinstance(rows, (str, bytes)) or not isinstance(rows, Sequence):
        raise InvalidInput(f"{name} must be a list of rows of {SCORE_RANGE}", param=name)
    if len(rows) == 0:
        raise InvalidInput(f"{name} has no rows; allowed: at least one row", param=name)
    lengths = np.empty(len(rows), dtype=np.int64)
    for i, r in enumerate(rows):
        if isinstance(r, (str, bytes)) or not hasattr(r, "__len__"):
            raise InvalidInput(
                f"{name}[{i}] is not a list; allowed: a list of {SCORE_RANGE}",
                param=f"{name}[{i}]",
            )
        lengths[i] = len(r)
    check_element_types(rows, name=name)
    empty = lengths == 0
    if empty.any():
        i = int(np.argmax(empty))
        raise InvalidInput(
            f"{name}[{i}] is empty; allowed: rows of at least one score in [0, 1]",
            param=f"{name}[{i}]",
        )
    total = int(lengths.sum())
    try:
        flat = np.fromiter(itertools.chain.from_iterable(rows), dtype=np.float64, count=total)
    except (TypeError, ValueError):
        # Only now look for the culprit, row by row.
        for i, r in enumerate(rows):
            try:
                np.asarray(r, dtype=np.float64)
            except (TypeError, ValueError):
                raise InvalidInput(
                    f"{name}[{i}] holds a value that is not a number; allowed: {SCORE_RANGE}",
                    param=f"{name}[{i}]",
                ) from None
        raise InvalidInput(f"{name} must hold only numbers in [0, 1]", param=name) from None
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    bad = ~((flat >= 0.0) & (flat <= 1.0))
    if bad.any():
        pos = int(np.argmax(bad))
        row = int(np.searchsorted(starts, pos, side="right")) - 1
        col = pos - int(starts[row])
        value = rows[row][col]
        if value is None:  # np.fromiter turns None into NaN; say what the caller sent
            raise InvalidInput(
                f"{name}[{row}][{col}] is null; allowed: {SCORE_RANGE}", param=f"{name}[{row}]"
            )
        check_scores_in_range(flat, row_starts=starts, name=name)
    groups = []
    for n in np.unique(lengths):
        idx = np.flatnonzero(lengths == n)
        groups.append((idx, flat[starts[idx, None] + np.arange(n)]))
    return lengths, groups


# A row is refused as sorted when a sampling-order row would come out this sorted by chance
# with probability below this (2 / multinomial(n; counts of each value), draws exchangeable).
SORTED_CHANCE = 1e-6


def reject_sorted_rows(x: FloatArray, idx: IntArray, name: str) -> None:
    """Raise for a row that is monotone with more than two distinct values, when such an order
    had probability < ``SORTED_CHANCE`` for exchangeable draws: the betting interval depends on
    the order of the draws and is only valid in sampling order. (0/1 rows are left alone: their
    order is often lost on purpose, and Clopper-Pearson does not depend on it.)"""
    if x.shape[1] < 3:
        return
    d = np.diff(x, axis=1)
    monotone = np.flatnonzero((d >= 0.0).all(axis=1) | (d <= 0.0).all(axis=1))
    for r in monotone:
        _, counts = np.unique(x[r], return_counts=True)
        if counts.size < 3:
            continue
        log_orders = math.lgamma(x.shape[1] + 1) - sum(math.lgamma(int(c) + 1) for c in counts)
        if log_orders > math.log(2.0 / SORTED_CHANCE):
            i = int(idx[r])
            raise InvalidInput(
                f"{name}[{i}] is sorted ({counts.size} distinct values in monotone order); "
                "allowed: scores in the order they were drawn (the betting interval is only "
                "valid in sampling order; do not sort rows)",
                param=f"{name}[{i}]",
            )


def bound_rows(
    rows: RowsLike,
    *,
    alpha: float = 0.01,
    thresholds: Sequence[float] | FloatArray = (),
    quantiles: Sequence[float] | FloatArray = (),
    ed_lambda: float = 1.0,
    leak_at: float = 1.0,
    ks: Sequence[int] = (),
    name: str = "scores",
) -> BoundsTable:
    """All bounds for each row of ``rows`` (a 2-D array or a list of possibly ragged rows).

    Validates first: ``alpha`` in (0, 0.5], thresholds and quantile levels in [0, 1], ``ed_lambda``
    finite and >= 0, ``leak_at`` in [0, 1], each k in ``ks`` in [1, MAX_K], every score a finite
    number (not a string or bool) in [0, 1], no empty row, no row sorted (see
    ``reject_sorted_rows``); errors name the argument
    (``scores[i]`` for row i) and the allowed values.
    """
    alpha = check_alpha(alpha)
    params = BoundParams(
        alpha=alpha,
        thresholds=check_levels(thresholds, name="thresholds"),
        quantile_levels=check_levels(quantiles, name="quantiles"),
        ed_lambda=check_ed_lambda(ed_lambda),
        leak_at=check_leak_at(leak_at),
        ks=check_ks(ks),
    )
    lengths, groups = group_rows(rows, name)
    m = lengths.size
    arrays: dict[str, NDArray[Any]] = {}
    mean = np.empty(m)
    for idx, x in groups:
        reject_sorted_rows(x, idx, name)
    for idx, x in groups:
        n = x.shape[1]
        group = Group(
            x=x,
            xs=np.sort(x, axis=1),
            n=n,
            mean=x.mean(axis=1),
            eps1=dkw_epsilon(n, alpha, two_sided=False),
            eps2=dkw_epsilon(n, alpha, two_sided=True),
            params=params,
        )
        mean[idx] = group.mean
        done: dict[str, NDArray[Any]] = {}
        for column in COLUMNS:
            done.update(column.compute(group, done))
        for key, values in done.items():
            if key not in arrays:
                arrays[key] = np.empty((m, *values.shape[1:]), dtype=values.dtype)
            arrays[key][idx] = values
    return BoundsTable(
        alpha=alpha,
        thresholds=params.thresholds,
        quantile_levels=params.quantile_levels,
        ed_lambda=params.ed_lambda,
        leak_at=params.leak_at,
        ks=params.ks,
        n=lengths,
        mean=mean,
        arrays=arrays,
    )
