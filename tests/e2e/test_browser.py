"""The job browser (/ui) in real headless Chromium (Debian's package, through playwright), on
jobs the real stack ran: the session `stack` (redis-server, scorer, vLLM sampler on the tiny
model) plus a second gateway process on the same Redis with API keys for two tenants.

Untrusted text: the real job's prompts and references carry the payloads; draws with markup are
ones the random-weight tiny model cannot be made to write, so one job's draws are stored through
``shared.store.Store`` (tests/fixtures/finished.py) and shown by the same real gateway.
"""

from __future__ import annotations

import os
import re
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from probeval.local import ProcessGroup, free_port, start_gateway
from services.gateway.ui.routes import CSP
from shared.planning import plan_chunks
from shared.results import build_results
from shared.schemas import TERMINAL_STATUSES, GreedyResult, JobCreate, JobStatus
from shared.store import ACTIVE, Store, connect
from tests.fixtures.browser import CHROMIUM_ARGS, chromium_or_skip
from tests.fixtures.finished import store_finished_job
from tests.fixtures.stacks import Stack, requires_vllm

pytestmark = [pytest.mark.slow, pytest.mark.vllm, requires_vllm]

KEY_A, KEY_B = "browser-key-a", "browser-key-b"
AUTH_A = {"Authorization": f"Bearer {KEY_A}"}
SCRIPT = "<script>window.__xss = 'script'</script>"
IMG = '"><img src=x onerror="window.__xss = \'img\'">'
N = 32
# Where a draw has a word of the reference (the page's own rule: runs of letters and digits).
WORD = re.compile(r"[^\W_]+")
SHOTS = os.environ.get("PROBEVAL_UI_TEST_SHOTS")  # a folder: keep the pages' screenshots there


@pytest.fixture(scope="module")
def chromium() -> str:
    return chromium_or_skip()


@pytest.fixture(scope="module")
def keyed(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A gateway with two tenants' keys, on the stack's Redis (so the stack's workers run its
    jobs)."""
    group = ProcessGroup(tmp_path_factory.mktemp("keyed") / "logs")
    try:
        env = {**stack.env, "PROBEVAL_API_KEYS": f"team-a:{KEY_A},team-b:{KEY_B}"}
        yield start_gateway(group, "127.0.0.1", free_port(), env)
    finally:
        group.stop()


def wait(c: httpx.Client, job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        view = c.get(f"/v1/jobs/{job_id}", headers=AUTH_A).json()
        if view["status"] in TERMINAL_STATUSES:
            return dict(view)
        time.sleep(0.5)
    raise TimeoutError(job_id)


@pytest.fixture(scope="module")
def real_job(keyed: str, stack: Stack) -> dict[str, Any]:
    """Team A's finished job: prompt and reference texts carry the payloads. Scorer regex `e`
    matches some of the tiny model's draws, so P(leak) differs between prompts."""
    body = {
        "model": "tiny",
        "prompts": [
            {"id": f"q{i}", "prompt": f"Story {i}: {SCRIPT} {IMG}", "reference": f"the river {IMG}"}
            for i in range(5)
        ],
        "sampling": {"n": N, "max_tokens": 8, "temperature": 1.0, "seed": 5},
        "scorer": {"name": "regex", "pattern": "e"},
        "alpha": 0.05,
    }
    with httpx.Client(base_url=keyed, timeout=30) as c:
        resp = c.post("/v1/jobs", json=body, headers=AUTH_A)
        assert resp.status_code == 202, resp.text
        job_id = resp.json()["id"]
        assert wait(c, job_id)["status"] == "succeeded"
        results = c.get(f"/v1/jobs/{job_id}/results", headers=AUTH_A).json()
        samples = c.get(
            f"/v1/jobs/{job_id}/samples", params={"prompt_id": "q0", "limit": N}, headers=AUTH_A
        ).json()
    return {"id": job_id, "body": body, "results": results, "q0": samples["samples"]}


@pytest.fixture(scope="module")
def stored_job(stack: Stack) -> str:
    """Team A's job whose draws themselves are the payloads, written through the store."""
    store = Store(connect(stack.env["PROBEVAL_REDIS_URL"]), retention_s=3600)
    job_id = f"stored-xss-{os.getpid()}"
    body = {
        "model": "tiny",
        "prompts": [{"id": "x", "prompt": "Say it.", "reference": "old mill"}],
        "sampling": {"n": 6},
    }
    draws = [
        [
            (SCRIPT, 0.0),
            (IMG, 0.0),
            (SCRIPT, 0.0),
            ("by the old mill", 1.0),
            (IMG, 0.0),
            (SCRIPT, 0.0),
        ]
    ]
    store_finished_job(
        store, job_id, body, draws, [GreedyResult(text=IMG, score=0.0)], tenant="team-a"
    )
    return job_id


@pytest.fixture()
def browser(chromium: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=chromium,
            args=CHROMIUM_ARGS,
        )
        yield b
        b.close()


class Tab:
    """One browser context (its own sessionStorage) with its page errors and CSP reports."""

    def __init__(self, browser: Any, base: str, key: str | None) -> None:
        self.base = base
        self.context = browser.new_context(viewport={"width": 1280, "height": 900})
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.key = key

    def open(self, path: str, ready: str = "yes") -> Any:
        resp = self.page.goto(self.base + path)
        assert resp is not None and resp.status == 200
        assert resp.headers["content-security-policy"] == CSP
        if self.key is not None:  # typed into the page's own key form, as a person would
            self.page.wait_for_selector('body[data-ready="error"]')  # no key yet: refused
            self.page.fill("#key-input", self.key)
            self.page.click("#key-form button[type=submit]")  # sets data-ready="loading"
            self.key = None
        self.page.wait_for_selector(f'body[data-ready="{ready}"]', timeout=60_000)
        return self.page

    def shot(self, name: str) -> None:
        if SHOTS:
            Path(SHOTS).mkdir(parents=True, exist_ok=True)
            self.page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=True)

    def assert_clean(self) -> None:
        assert self.page.evaluate("window.__xss === undefined")
        assert self.page.locator("img").count() == 0
        assert self.page.locator("script").count() == 3  # api.js, plots.js, the page's own
        # The only console errors allowed are the refused reads of a wrong or foreign key.
        assert all("401" in e or "404" in e for e in self.errors), self.errors


def column(page: Any, key: str) -> list[str]:
    return [
        t.strip() for t in page.locator(f'#prompts tbody td[data-key="{key}"]').all_inner_texts()
    ]


def test_jobs_job_and_prompt_pages_of_a_real_job(
    browser: Any, keyed: str, real_job: dict[str, Any]
) -> None:
    job_id = real_job["id"]
    tab = Tab(browser, keyed, KEY_A)
    page = tab.open("/ui/jobs")
    row = page.locator(f'#jobs tbody tr[data-id="{job_id}"]')
    assert row.count() == 1
    assert row.locator("td.status").inner_text().strip() == "succeeded"
    assert row.locator("progress").get_attribute("value") == "1.0000"
    page.select_option("#f-status", "failed")
    page.wait_for_selector(f'#jobs tbody tr[data-id="{job_id}"]', state="detached")
    tab.shot("jobs")

    page = tab.open(f"/ui/jobs/{job_id}")
    prompts = real_job["results"]["prompts"]
    assert column(page, "id") == [p["id"] for p in prompts]
    uppers = {p["id"]: p["full_score"]["upper"] for p in prompts}
    assert len(set(uppers.values())) > 1, f"regex `e` gave every prompt the same k: {uppers}"
    page.click('button.sort[data-key="p_upper"]')  # descending first
    descending = sorted(uppers, key=lambda i: (-uppers[i], int(i[1:])))
    assert column(page, "id") == descending
    assert column(page, "p_upper") == [f"{uppers[i]:.3f}" for i in descending]
    page.click('button.sort[data-key="p_upper"]')
    ascending = sorted(uppers, key=lambda i: (uppers[i], int(i[1:])))
    assert column(page, "id") == ascending
    # Two different values: the two orders differ, so at least one is not the job's order.
    assert descending != ascending
    page.wait_for_selector("#ecdfs[data-drawn]")
    assert page.locator("#ecdfs svg.ecdf polygon").count() == len(prompts)  # the bands
    assert page.locator("#overview-svg g.prompt").count() == len(prompts)
    box = page.locator("#overview-svg").bounding_box()
    assert box is not None and box["width"] > 400 and box["height"] > 200
    downloads = page.locator("#downloads a").all_inner_texts()
    assert {"samples.jsonl", "results.csv", "static report (HTML)"} <= set(downloads)
    with page.expect_download() as info:
        page.click('#downloads a[data-name$="-results.csv"]')
    assert info.value.suggested_filename == f"{job_id}-results.csv"
    # The payloads of the prompt and reference: shown as text in the parameters, nothing ran.
    tab.shot("job")
    tab.assert_clean()

    page = tab.open(f"/ui/jobs/{job_id}/prompt?id=q0")
    assert page.locator("#prompt-text").inner_text() == real_job["body"]["prompts"][0]["prompt"]
    assert page.locator("#reference").inner_text() == f"the river {IMG}"
    counts = [int(t) for t in page.locator("#draws tbody td.count").all_inner_texts()]
    texts = Counter(s["text"] for s in real_job["q0"])
    assert sum(counts) == N and counts == sorted(texts.values(), reverse=True)
    words = {w.lower() for w in WORD.findall(f"the river {IMG}")}
    shown = page.locator("#draws tbody td.text").all_inner_texts()
    expected = sum(1 for t in shown for w in WORD.findall(t) if w.lower() in words)
    assert page.locator("#draws tbody mark").count() == expected
    assert all(m.lower() in words for m in page.locator("#draws tbody mark").all_inner_texts())
    page.check('input[name="order"][value="sampling"]')
    assert page.locator("#draws tbody tr.draw").count() == N
    assert page.locator("#histogram-svg rect.bar").count() == 11
    tab.shot("prompt")
    tab.assert_clean()
    tab.context.close()


def test_markup_in_draws_is_shown_as_text_and_runs_nothing(
    browser: Any, keyed: str, stored_job: str
) -> None:
    tab = Tab(browser, keyed, KEY_A)
    page = tab.open(f"/ui/jobs/{stored_job}/prompt?id=x")
    rows = page.locator("#draws tbody tr.group")
    assert [int(t) for t in rows.locator("td.count").all_inner_texts()] == [3, 2, 1]
    assert rows.locator("td.text").all_inner_texts() == [SCRIPT, IMG, "by the old mill"]
    assert page.locator("#draws tbody mark").all_inner_texts() == ["old", "mill"]
    assert page.locator("#greedy .draw-text").inner_text() == IMG
    tab.assert_clean()
    page = tab.open(f"/ui/jobs/{stored_job}")
    assert column(page, "id") == ["x"]
    tab.assert_clean()
    tab.context.close()


def test_no_key_or_a_wrong_key_shows_a_message_and_no_data(
    browser: Any, keyed: str, real_job: dict[str, Any]
) -> None:
    job_id = real_job["id"]
    for key, says in [(None, "needs an API key"), ("not-a-key", "API key was refused")]:
        tab = Tab(browser, keyed, key)
        for path in ["/ui/jobs", f"/ui/jobs/{job_id}", f"/ui/jobs/{job_id}/prompt?id=q0"]:
            page = tab.open(path, ready="error")
            assert says in page.locator("#message").inner_text()
            assert page.locator("#content tbody tr").count() == 0
            assert page.locator("#content svg").count() == 0
            assert page.locator("#params tr, #summary tr, #bounds tr").count() == 0
            assert "Story 0" not in page.content()
        tab.context.close()


def test_another_tenants_job_is_not_reachable(
    browser: Any, keyed: str, real_job: dict[str, Any]
) -> None:
    job_id = real_job["id"]
    tab = Tab(browser, keyed, KEY_B)
    page = tab.open("/ui/jobs")
    assert page.locator(f'#jobs tbody tr[data-id="{job_id}"]').count() == 0
    for path in [f"/ui/jobs/{job_id}", f"/ui/jobs/{job_id}/prompt?id=q0"]:
        page = tab.open(path, ready="error")
        assert "Not found" in page.locator("#message").inner_text()
        assert page.locator("#content tbody tr, #params tr, #content svg").count() == 0
        assert "Story 0" not in page.content()
    tab.context.close()


def test_progress_bars_follow_the_events_stream(browser: Any, keyed: str, stack: Stack) -> None:
    """A running job's draws are scored (written through the store, as the scorer writes them)
    while its row is on screen: the bar moves and the status changes without a reload."""
    from playwright.sync_api import expect

    store = Store(connect(stack.env["PROBEVAL_REDIS_URL"]), retention_s=3600)
    job_id = f"live-{os.getpid()}"
    spec = JobCreate.model_validate(
        {
            "model": "tiny",
            "prompts": [{"id": "a", "prompt": "p", "reference": "r"}],
            "sampling": {"n": 8},
        }
    )
    chunks = plan_chunks(job_id, spec, chunk_max_n=256, chunk_draws=4096)
    assert store.create_job(job_id, spec, chunks, tenant="team-a").accepted  # nothing enqueued
    store.set_status(job_id, JobStatus.running, allowed_from=ACTIVE)
    tab = Tab(browser, keyed, KEY_A)
    streams: list[str] = []
    tab.page.on("request", lambda r: streams.append(r.url) if r.url.endswith("/events") else None)
    page = tab.open("/ui/jobs")
    label = page.locator(f'#jobs tr[data-id="{job_id}"] .progress-label')
    assert label.inner_text() == "0 / 8"
    store.save_scores(job_id, 0, {i: 0.5 for i in range(4)})
    # expect() polls through the protocol: the page's CSP forbids wait_for_function's eval.
    expect(label).to_have_text("4 / 8", timeout=15_000)
    store.save_texts(job_id, 0, {i: "t" for i in range(8)})
    store.save_scores(job_id, 0, {i: 0.5 for i in range(4, 8)})
    store.save_results(
        job_id, build_results(store, store.get_job(job_id), status=JobStatus.succeeded)
    )
    store.set_status(job_id, JobStatus.succeeded, allowed_from=ACTIVE)
    page.wait_for_selector(f'#jobs tr[data-id="{job_id}"][data-status="succeeded"]')
    expect(label).to_have_text("8 / 8")
    assert any(job_id in url for url in streams), streams  # live through the stream
    tab.context.close()
