"""Input checks shared by every estimator: run first, fail with the argument and allowed values.

Messages name the offending argument the way the caller spelled it (``scores[3]``), the row and
column, the bad value and what is allowed, so the CLI and the gateway can print them unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from shared.errors import InvalidInput

FloatArray = NDArray[np.float64]

SCORE_RANGE = "finite numbers in [0, 1]"


ALPHA_RANGE = "a number in (0, 0.5]"


def is_real_number(value: object) -> bool:
    """A Python or numpy int/float, not a bool or a string that merely parses as one."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_)
    )


def check_alpha(alpha: float, *, name: str = "alpha") -> float:
    """Return ``alpha`` as a float, or raise when it is not a finite number in (0, 0.5].

    Above 1/2 a one-sided lower bound can exceed the upper one (Clopper-Pearson), and Massart's
    one-sided DKW constant is proven only up to 1/2. Strings and booleans are refused, not
    converted: ``"0.05"`` is a caller's mistake.
    """
    if not is_real_number(alpha):
        raise InvalidInput(f"{name} must be {ALPHA_RANGE}, got {alpha!r}", param=name)
    value = float(alpha)
    if not (math.isfinite(value) and 0.0 < value <= 0.5):
        raise InvalidInput(f"{name} must be {ALPHA_RANGE}, got {alpha!r}", param=name)
    return value


def check_levels(values: Sequence[float] | FloatArray, *, name: str) -> FloatArray:
    """Thresholds or quantile levels: a 1-D list of finite numbers in [0, 1]."""
    try:
        arr = np.asarray(values, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise InvalidInput(f"{name} must be a list of numbers in [0, 1]", param=name) from None
    bad = ~(np.isfinite(arr) & (arr >= 0.0) & (arr <= 1.0))
    if bad.any():
        i = int(np.argmax(bad))
        raise InvalidInput(
            f"{name}[{i}] is {float(arr[i])!r}; allowed: {SCORE_RANGE}", param=f"{name}[{i}]"
        )
    return arr


def check_ed_lambda(ed_lambda: float, *, name: str = "ed_lambda") -> float:
    """Return the weight lambda of ``mean + lambda * sd`` as a float: finite and >= 0."""
    try:
        value = float(ed_lambda)
    except (TypeError, ValueError):
        value = math.nan
    if not (math.isfinite(value) and value >= 0.0):
        raise InvalidInput(f"{name} must be a finite number >= 0, got {ed_lambda!r}", param=name)
    return value


_PLAIN = frozenset({int, float, type(None)})  # None is reported as "null" further on


def check_element_types(rows: object, *, name: str, row_offset: int = 0) -> None:
    """Refuse strings, booleans and other non-numbers inside rows instead of converting them.

    ``rows`` is a 1-D or 2-D array, or a sequence of rows (lists or arrays). numpy would turn
    ``"0.5"`` into 0.5 and ``True`` into 1.0 without a word; a score must be a number.
    """
    if isinstance(rows, np.ndarray):
        if rows.dtype.kind not in "fiu":
            raise InvalidInput(
                f"{name} holds values of dtype {rows.dtype}; allowed: {SCORE_RANGE}", param=name
            )
        return
    if isinstance(rows, (str, bytes)) or not isinstance(rows, Sequence):
        return  # the shape checks that follow report it
    flat_row = all(not isinstance(r, (Sequence, np.ndarray)) or isinstance(r, (str, bytes))
                   for r in rows)  # fmt: skip
    for i, row in enumerate([rows] if flat_row else rows):
        where = name if flat_row else f"{name}[{i + row_offset}]"
        if isinstance(row, np.ndarray):
            if row.dtype.kind not in "fiu":
                raise InvalidInput(
                    f"{where} holds values of dtype {row.dtype}; allowed: {SCORE_RANGE}",
                    param=where,
                )
            continue
        if isinstance(row, (str, bytes)) or not isinstance(row, Sequence):
            continue
        if set(map(type, row)) <= _PLAIN:
            continue
        for j, v in enumerate(row):
            if v is not None and not is_real_number(v):
                raise InvalidInput(
                    f"{where}[{j}] is {v!r} ({type(v).__name__}); allowed: {SCORE_RANGE} "
                    "(strings and booleans are not converted)",
                    param=where,
                )


def check_score_matrix(x: object, *, name: str = "x", row_offset: int = 0) -> FloatArray:
    """A 2-D array of scores (one row per prompt, equal lengths), every entry in [0, 1].

    A 1-D array is taken as one row. ``row_offset`` shifts the row index in messages.
    """
    check_element_types(x, name=name, row_offset=row_offset)
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidInput(
            f"{name} must be a 2-D array of {SCORE_RANGE} (rows of equal length)", param=name
        ) from None
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise InvalidInput(
            f"{name} must be a 2-D array of {SCORE_RANGE}, got {arr.ndim} dimensions", param=name
        )
    if arr.shape[0] == 0:
        raise InvalidInput(f"{name} has no rows; allowed: at least one row", param=name)
    if arr.shape[1] == 0:
        raise InvalidInput(
            f"{name}[{row_offset}] is empty; allowed: rows of at least one score in [0, 1]",
            param=f"{name}[{row_offset}]",
        )
    check_scores_in_range(
        arr.reshape(-1), row_starts=None, width=arr.shape[1], name=name, row_offset=row_offset
    )
    return arr


def check_scores_in_range(
    flat: FloatArray,
    *,
    row_starts: NDArray[np.int64] | None,
    width: int | None = None,
    name: str,
    row_offset: int = 0,
) -> None:
    """Raise for the first entry of ``flat`` that is NaN, infinite or outside [0, 1].

    Rows are located either by a fixed ``width`` or by ``row_starts`` (ragged rows, flattened).
    """
    # One vectorised pass; only on failure do we look up where the first bad value sits.
    ok = (flat >= 0.0) & (flat <= 1.0)  # NaN compares False, +-inf falls outside
    if ok.all():
        return
    pos = int(np.argmin(ok))
    if row_starts is None:
        row, col = divmod(pos, max(int(width or 1), 1))
    else:
        row = int(np.searchsorted(row_starts, pos, side="right")) - 1
        col = pos - int(row_starts[row])
    value = float(flat[pos])
    what = "NaN" if math.isnan(value) else ("infinite" if math.isinf(value) else repr(value))
    where = f"{name}[{row + row_offset}]"
    raise InvalidInput(f"{where}[{col}] is {what}; allowed: {SCORE_RANGE}", param=where)


def check_leak_at(value: float, *, name: str = "leak_at") -> float:
    """The leak threshold: a finite number in [0, 1]."""
    v = float(value)
    if not (math.isfinite(v) and 0.0 <= v <= 1.0):
        raise InvalidInput(f"{name} is {value!r}; allowed: {SCORE_RANGE}", param=name)
    return v
