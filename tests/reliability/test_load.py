"""1,000 job submissions from 50 concurrent clients against one real gateway (bench/load_submit.py):
every submission is answered 202 or 429, every accepted job reaches a terminal state (most are
cancelled right after acceptance; every 100th runs on the real sampler to success), and no job is
lost. Latency and throughput are recorded as figures, never asserted."""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from typing import Any

import pytest

from bench.load_submit import run_load
from tests.fixtures.reliability import AUTH_A, MODEL, ReliabilityStack
from tests.fixtures.stacks import requires_vllm

pytestmark = [pytest.mark.slow, pytest.mark.vllm, requires_vllm]


def test_thousand_submissions_fifty_clients(
    rstack: ReliabilityStack, figures: dict[str, Any]
) -> None:
    rstack.wait_for_sampler()
    report = asyncio.run(
        run_load(
            rstack.base,
            headers=AUTH_A,
            model=MODEL,
            count=1000,
            concurrency=50,
            keep_every=100,
            max_seconds=240,
        )
    )
    figures["load"] = asdict(report) | {"kept": len(report.kept)}
    assert report.errors == []
    assert report.submitted == 1000
    assert set(report.statuses) <= {202, 429}, report.statuses
    assert report.lost == []
    assert sum(report.final_statuses.values()) == report.accepted
    with rstack.client() as c:
        for job_id in report.kept:
            view = c.get(f"/v1/jobs/{job_id}").json()
            assert view["status"] == "succeeded", view
            assert view["progress"] == {"samples_done": 1, "samples_total": 1}
