"""The report page from fixed data: self-contained, with the expected elements."""

from __future__ import annotations

import re

import pytest

from shared.bounds import compute_bounds
from shared.report import render_report
from shared.results import full_score_bounds, summarize
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
    full = full_score_bounds(rows, 0.05)
    prompts = [
        PromptResult(id=p.id, n=8, greedy=GreedyResult(text="x", score=0.0), bounds=b, full_score=f)
        for p, b, f in zip(spec.prompts, bounds.rows, full, strict=True)
    ]
    results = JobResults(
        id="j",
        status=JobStatus.succeeded,
        alpha=0.05,
        prompts=prompts,
        summary=summarize(prompts),
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


def test_summary_counts_what_greedy_hides() -> None:
    rows = [[0.0] * 50 + [1.0] * 10, [0.0] * 60, [0.5] * 60]
    bounds = compute_bounds(rows, BoundsOptions(alpha=0.01)).rows
    full = full_score_bounds(rows, 0.01)
    prompts = [
        PromptResult(
            id=str(i), n=60, greedy=GreedyResult(text="", score=0.0), bounds=b, full_score=f
        )
        for i, (b, f) in enumerate(zip(bounds, full, strict=True))
    ]
    summary = summarize(prompts)
    assert summary.prompts == 3
    assert summary.greedy_zero_but_sampled_positive == 2  # rows 0 and 2
    assert summary.full_score_proven == 1  # only row 0 has draws scoring 1
    assert summary.max_expectation_upper == max(b.expectation.upper for b in bounds)
    assert summary.mean_of_means == pytest.approx((10 / 60 + 0 + 0.5) / 3, rel=1e-12)
