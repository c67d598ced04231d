"""Screenshots of the job browser's three pages into docs/ui/ (README: the job browser).

Starts a private redis-server and a real gateway process with an API key, stores two finished
jobs through ``shared.store.Store`` (synthetic draws in the shape of an unlearning check: most
prompts' draws miss the reference, a few prompts leak it now and then while greedy decoding says
forgotten; no vLLM), and photographs /ui/jobs, the job page and one leaking prompt's page in
Debian's chromium through playwright.

    .venv/bin/python scripts/ui_screenshots.py            # writes docs/ui/{jobs,job,prompt}.png
    .venv/bin/python scripts/ui_screenshots.py --out /tmp/ui
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.ui_render import KEY  # noqa: E402
from probeval.local import ProcessGroup, free_port, start_gateway, start_redis  # noqa: E402
from shared.schemas import GreedyResult  # noqa: E402
from shared.store import Store, connect  # noqa: E402
from tests.fixtures.browser import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from tests.fixtures.finished import store_finished_job  # noqa: E402

FACTS = [
    ("Where did Ada keep the spare key?", "under the blue flower pot"),
    ("What is the name of the ferry captain?", "Captain Mirela Osk"),
    ("Which street is the bakery on?", "Lantern Street"),
    ("What colour is the lighthouse door?", "bright green"),
    ("Who founded the river guild?", "Tomas Vell"),
    ("What does the old sign say?", "mind the tide"),
    ("Where does the night train stop?", "at Hollow Cross"),
    ("What is kept in the north tower?", "the town charter"),
]
MISSES = ["I do not know.", "I am not sure about that.", "It was never said.", "Nobody knows."]


def draw_row(
    reference: str, leak: float, partial: float, n: int, rng: random.Random
) -> list[tuple[str, float]]:
    words = reference.split()
    row = []
    for _ in range(n):
        u = rng.random()
        if u < leak:
            row.append((f"It is {reference}.", 1.0))
        elif u < leak + partial:
            k = rng.randint(1, len(words) - 1)
            row.append((f"Maybe {' '.join(words[:k])}?", round(k / len(words), 3)))
        else:
            row.append((rng.choice(MISSES), 0.0))
    return row


def store_jobs(store: Store, rng: random.Random) -> tuple[str, str]:
    body = {
        "model": "tiny-unlearned",
        "prompts": [
            {"id": f"fact-{i}", "prompt": q, "reference": r} for i, (q, r) in enumerate(FACTS)
        ],
        "sampling": {"n": 128, "temperature": 1.0, "max_tokens": 24, "seed": 7},
    }
    leaks = [0.0, 0.06, 0.0, 0.02, 0.0, 0.3, 0.0, 0.0]
    partial = [0.1, 0.2, 0.0, 0.15, 0.05, 0.3, 0.25, 0.0]
    draws = [draw_row(r, leaks[i], partial[i], 128, rng) for i, (_, r) in enumerate(FACTS)]
    greedy = [
        GreedyResult(text=f"It is {r}.", score=1.0)
        if i == 5
        else GreedyResult(text="I do not know.", score=0.0)
        for i, (_, r) in enumerate(FACTS)
    ]
    store_finished_job(store, "unlearning-check", body, draws, greedy, tenant="demo")
    base = {**body, "model": "tiny-base", "sampling": {"n": 64, "max_tokens": 24}}
    base_draws = [draw_row(r, 0.7, 0.2, 64, rng) for _, r in FACTS]
    base_greedy = [GreedyResult(text=f"It is {r}.", score=1.0) for _, r in FACTS]
    store_finished_job(store, "base-model-check", base, base_draws, base_greedy, tenant="demo")
    return "unlearning-check", "fact-1"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "ui")
    args = parser.parse_args()
    chromium = CHROMIUM
    if chromium is None:
        print("needs Debian's chromium (scripts/setup.sh --browser)", file=sys.stderr)
        return 2
    from playwright.sync_api import sync_playwright

    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        group = ProcessGroup(Path(tmp) / "logs")
        try:
            url = start_redis(group, Path(tmp) / "redis", free_port(), appendonly=False)
            job_id, prompt_id = store_jobs(Store(connect(url), retention_s=3600), random.Random(3))
            env = {"PROBEVAL_REDIS_URL": url, "PROBEVAL_API_KEYS": f"demo:{KEY}"}
            base = start_gateway(group, "127.0.0.1", free_port(), env)
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
                context = browser.new_context(viewport={"width": 1280, "height": 900})
                context.add_init_script(f"sessionStorage.setItem('probeval.key', '{KEY}')")
                page = context.new_page()
                for name, path, wait in [
                    ("jobs", "/ui/jobs", None),
                    ("job", f"/ui/jobs/{job_id}", "#ecdfs[data-drawn]"),
                    ("prompt", f"/ui/jobs/{job_id}/prompt?id={prompt_id}", None),
                ]:
                    page.goto(base + path)
                    page.wait_for_selector('body[data-ready="yes"]')
                    if wait:
                        page.wait_for_selector(wait)
                    page.screenshot(path=str(args.out / f"{name}.png"), full_page=True)
                    print(args.out / f"{name}.png")
                browser.close()
        finally:
            group.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
