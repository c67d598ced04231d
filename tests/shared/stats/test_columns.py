"""The bound-column registry is the one list of bounds: the JSON schema, the table, the
documents and the assumptions text all follow it."""

from __future__ import annotations

import numpy as np

from shared.bounds import compute_bounds
from shared.schemas import BoundsOptions, BoundsResponse, BoundsRow, JobResults
from shared.stats import ASSUMPTIONS, COLUMNS, bound_rows


def test_every_column_has_its_field_on_the_row_schema_and_nothing_else() -> None:
    bound_fields = set(BoundsRow.model_fields) - {"n", "mean"}
    assert {c.key for c in COLUMNS} == bound_fields


def test_every_array_of_every_column_is_in_the_table() -> None:
    table = bound_rows([[0.0, 1.0, 1.0], [0.2, 0.7]], alpha=0.05, thresholds=[0.5])
    for column in COLUMNS:
        for name in column.arrays:
            assert len(getattr(table, name)) == 2, name
    assert set(table.arrays) == {name for c in COLUMNS for name in c.arrays}


def test_documents_validate_as_the_row_schema_in_input_order() -> None:
    table = bound_rows([[0.0, 1.0, 1.0], [0.2, 0.7]], alpha=0.05, thresholds=[0.5], quantiles=[0.9])
    rows = [BoundsRow.model_validate(d) for d in table.documents()]
    assert [r.n for r in rows] == [3, 2]
    assert rows[0].binary is not None and rows[0].binary.k == 2
    assert rows[1].binary is None
    assert rows[1].expectation.upper == table.expectation_upper[1]
    assert [s.x for s in rows[0].survival] == [0.5]


def test_the_assumptions_text_is_one_text_naming_every_bound() -> None:
    for column in COLUMNS:
        assert column.assumption.startswith(f"{column.key}: ")
        assert column.assumption in ASSUMPTIONS
    assert "i.i.d." in ASSUMPTIONS and "[0, 1]" in ASSUMPTIONS
    assert ASSUMPTIONS.count("optional stopping") >= len(COLUMNS) - 1
    response = compute_bounds(np.array([[0.5, 0.25]]), BoundsOptions())
    assert response.assumptions == ASSUMPTIONS
    # No model carries a second, default wording of its own.
    assert BoundsResponse.model_fields["assumptions"].is_required()
    assert JobResults.model_fields["assumptions"].is_required()
