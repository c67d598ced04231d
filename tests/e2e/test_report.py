"""The report of a finished job, rendered by real headless Chromium (Debian's package)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.browser import CHROMIUM_ARGS, chromium_or_skip
from tests.fixtures.stacks import Stack, requires_vllm

pytestmark = [pytest.mark.slow, pytest.mark.vllm, requires_vllm]


@pytest.fixture()
def chromium() -> str:
    return chromium_or_skip()


def test_report_renders_table_and_plots(stack: Stack, chromium: str, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    body = {
        "model": "tiny",
        "prompts": [
            {
                "id": f"q{i}",
                "prompt": f"Question {i}: where is the old mill?",
                "reference": "by the river",
            }
            for i in range(3)
        ],
        "sampling": {"n": 64, "max_tokens": 8},
    }
    with stack.client() as c:
        job_id = c.post("/v1/jobs", json=body).json()["id"]
        assert stack.wait_for_job(job_id)["status"] == "succeeded"

    problems: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=chromium,
            args=CHROMIUM_ARGS,
        )
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        # Anything the page fetches besides itself would break offline rendering.
        requests: list[str] = []
        page.on("request", lambda r: requests.append(r.url))
        resp = page.goto(f"{stack.base}/v1/jobs/{job_id}/report")
        assert resp is not None and resp.status == 200
        shot = tmp_path / "report.png"
        page.screenshot(path=str(shot), full_page=True)
        assert page.locator("table#prompts tbody tr").count() == 3
        assert page.locator("table#params").count() == 1
        assert page.locator("svg#overview").count() == 1
        assert page.locator("#ecdfs svg.ecdf").count() == 3
        assert page.locator("#ecdfs svg.ecdf polyline").count() == 3  # the ECDF step lines
        assert page.locator("#ecdfs svg.ecdf polygon").count() == 3  # the DKW bands
        box = page.locator("svg#overview").bounding_box()
        assert box is not None and box["width"] > 100 and box["height"] > 100
        browser.close()
    assert not problems, problems
    assert requests == [f"{stack.base}/v1/jobs/{job_id}/report"], requests
    assert shot.stat().st_size > 10_000 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
