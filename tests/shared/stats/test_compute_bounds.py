"""shared.bounds: the one service-facing function and its JSON contract."""

from __future__ import annotations

import json

import numpy as np
import pytest

from shared.bounds import compute_bounds, validate_rows
from shared.errors import InvalidInput
from shared.schemas import BoundsOptions, BoundsResponse

OPTIONS = BoundsOptions(alpha=0.05, thresholds=[0.2, 0.9], quantiles=[0.5], ed_lambda=2.0)
ROW_KEYS = {"n", "mean", "binary", "expectation", "std", "ed", "survival", "quantiles", "betting"}


def test_json_contract_and_round_trip() -> None:
    resp = compute_bounds([[0, 1, 1, 0], [0.2, 0.4, 0.9]], OPTIONS)
    doc = json.loads(resp.model_dump_json(by_alias=True))
    assert doc["alpha"] == 0.05 and "assumptions" in doc
    first, second = doc["rows"]
    assert set(first) >= ROW_KEYS
    assert first["binary"]["k"] == 2 and set(first["binary"]) == {"k", "upper", "lower"}
    assert second["binary"] is None
    assert first["ed"] == {"lambda": 2.0, "upper": first["ed"]["upper"]}
    assert [s["x"] for s in second["survival"]] == [0.2, 0.9]
    assert [q["q"] for q in second["quantiles"]] == [0.5]
    assert set(second["betting"]) == {"lower", "upper"}
    assert set(second["expectation"]) == {"lower", "upper"} and set(second["std"]) == {"upper"}
    # The constructed models are valid models: strict re-validation gives the same document.
    again = BoundsResponse.model_validate(doc)
    assert json.loads(again.model_dump_json(by_alias=True)) == doc


def test_lists_and_arrays_give_identical_results() -> None:
    x = np.random.default_rng(1).random((5, 33))
    a = compute_bounds(x, OPTIONS).model_dump(by_alias=True)
    b = compute_bounds(x.tolist(), OPTIONS).model_dump(by_alias=True)
    c = [compute_bounds([r], OPTIONS).model_dump(by_alias=True)["rows"][0] for r in x.tolist()]
    assert a == b and a["rows"] == c


def test_ed_is_two_sided_mean_upper_plus_lambda_sd() -> None:
    from shared.stats import dkw_epsilon
    from shared.stats.dkw import anderson_upper_sorted

    x = np.random.default_rng(2).beta(2, 5, size=(1, 100))
    row = compute_bounds(x, OPTIONS).rows[0]
    mean_up = anderson_upper_sorted(np.sort(x, axis=1), dkw_epsilon(100, 0.05, two_sided=True))
    assert row.ed.upper == pytest.approx(mean_up[0] + 2.0 * row.std.upper, abs=1e-12)
    assert row.ed.upper > row.expectation.upper + 2.0 * row.std.upper  # two-sided band: wider


@pytest.mark.parametrize(
    ("rows", "param", "fragment"),
    [
        ([[0.1, float("nan")]], "scores[0]", "scores[0][1] is NaN; allowed: finite"),
        ([[0.1], [float("inf")]], "scores[1]", "scores[1][0] is infinite"),
        ([[0.1], [0.2], [1.5]], "scores[2]", "scores[2][0] is 1.5; allowed"),
        ([[-0.0, -1e-9]], "scores[0]", "scores[0][1] is -1e-09"),
        ([[0.1], []], "scores[1]", "scores[1] is empty"),
        ([[0.1], 0.3], "scores[1]", "scores[1] is not a list"),
        ([[0.1], ["a"]], "scores[1]", "scores[1][0] is 'a' (str); allowed: finite"),
        ([[0.1, 0.2], [0.3, "0.5"]], "scores[1]", "scores[1][1] is '0.5' (str)"),
        ([[0.1], [True, 0.5]], "scores[1]", "scores[1][0] is True (bool)"),
        ([np.array([0.1]), np.array([True])], "scores[1]", "dtype bool"),
        ([[0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]], "scores[0]", "is sorted"),
        ([[0.1], [None]], "scores[1]", "scores[1][0] is null; allowed"),
        ([], "scores", "no rows"),
        (np.zeros((2, 0)), "scores[0]", "scores[0] is empty"),
        (np.full((2, 3), 2.0), "scores[0]", "scores[0][0] is 2.0"),
    ],
)  # fmt: skip
def test_bad_rows_name_the_row_and_the_allowed_values(
    rows: object, param: str, fragment: str
) -> None:
    with pytest.raises(InvalidInput) as info:
        validate_rows(rows)  # type: ignore[arg-type]
    assert info.value.param == param
    assert fragment in info.value.message
    with pytest.raises(InvalidInput):
        compute_bounds(rows, OPTIONS)  # type: ignore[arg-type]
