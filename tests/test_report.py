"""The report page from fixed data: self-contained, with the expected elements."""

from __future__ import annotations

import re

from shared.bounds import compute_bounds
from shared.report import full_score_bounds, render_report
from shared.results import summarize
from shared.schemas import (
    BoundsOptions,
    GreedyResult,
    JobCreate,
    JobResults,
    JobStatus,
    PromptResult,
)


def test_report_is_self_contained_and_complete() -> None:
    spec = JobCreate.model_validate(
        {
            "model": "m",
            "prompts": [
                {"id": "a<b", "prompt": "p", "reference": "r"},
                {"id": "c", "prompt": "p", "reference": "r"},
            ],
            "sampling": {"n": 8},
        }
    )
    rows = [[0, 0, 1, 1, 0.5, 0, 0, 1], [0.0] * 8]
    bounds = compute_bounds(rows, BoundsOptions(alpha=0.05))
    prompts = [
        PromptResult(id=p.id, n=8, greedy=GreedyResult(text="x", score=0.0), bounds=b)
        for p, b in zip(spec.prompts, bounds.rows, strict=True)
    ]
    results = JobResults(
        id="j",
        status=JobStatus.succeeded,
        alpha=0.05,
        prompts=prompts,
        summary=summarize(prompts, rows),
        assumptions=bounds.assumptions,
    )
    page = render_report("j", spec, results, rows)
    assert page.startswith("<!DOCTYPE html>")
    assert "<script" not in page and "http://" not in page.replace(
        'xmlns="http://www.w3.org/2000/svg"', ""
    )
    assert "https://" not in page and "@import" not in page and "url(" not in page
    assert "a&lt;b" in page and "a<b" not in page  # ids are escaped
    assert page.count('class="ecdf"') == 2 and 'id="overview"' in page
    assert len(re.findall(r"<tr><td class=\"l\">", page)) == 2


def test_full_score_bounds_match_binary_rows() -> None:
    rows = [[1.0, 0.0, 1.0, 0.0, 0.0], [0.5, 1.0, 0.0]]
    full = full_score_bounds(rows, alpha=0.05)
    binary = compute_bounds([rows[0]], BoundsOptions(alpha=0.05)).rows[0].binary
    assert binary is not None
    assert (full[0].k, full[0].lower, full[0].upper) == (binary.k, binary.lower, binary.upper)
    assert full[1].k == 1
