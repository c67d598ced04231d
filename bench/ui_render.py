"""Time for the job browser's job page of a large finished job to render in headless Chromium
(docs/BENCHMARKS.md).

Starts a private redis-server and a real gateway process with an API key, stores a finished job
of ``--prompts`` x ``--n`` draws through ``shared.store.Store`` (the workers' own writes) and its
results (no vLLM), then opens /ui/jobs/{id} in Debian's chromium through playwright, each run in
a fresh browser context (cold cache), and reports, per run:

- ``table_s``: from the navigation to the page's ready flag (params, summary, the sortable table
  of all prompts with its first page of rows, and the overview plot of every prompt drawn);
- ``ecdfs_s``: until the empirical-CDF plots of the page's first 24 rows are drawn too;
- the bytes the page transferred (HTML, scripts, JSON), from the Resource Timing API.

    .venv/bin/python bench/ui_render.py                    # 1,000 prompts x 256 draws, 5 runs
    .venv/bin/python bench/ui_render.py --prompts 100 --runs 3

Run by hand; no test asserts these numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._stack import private_redis, store_synthetic_job  # noqa: E402
from probeval.local import free_port, start_gateway  # noqa: E402
from shared.schemas import GreedyResult  # noqa: E402
from shared.store import Store  # noqa: E402
from tests.fixtures.browser import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from tests.fixtures.finished import store_finished_job  # noqa: E402

WORDS = ["the", "river", "runs", "past", "old", "mill", "under", "stone", "bridge", "apples"]
KEY = "bench-key"


def store_job(store: Store, prompts: int, n: int, rng: random.Random) -> str:
    body = {
        "model": "bench",
        "prompts": [
            {
                "id": f"p{i:04d}",
                "prompt": f"Question {i}: where is the old mill?",
                "reference": "old mill",
            }
            for i in range(prompts)
        ],
        "sampling": {"n": n},
    }
    draws = []
    for _ in range(prompts):
        leak = rng.random() * 0.1
        row = []
        for _ in range(n):
            if rng.random() < leak:
                row.append(("by the old mill", 1.0))
            else:
                text = " ".join(rng.choice(WORDS) for _ in range(8))
                row.append((text, round(rng.random() * 0.6, 2)))
        draws.append(row)
    greedy = [GreedyResult(text="under the bridge", score=0.0) for _ in range(prompts)]
    store_finished_job(store, "bench-ui", body, draws, greedy, tenant="bench")
    return "bench-ui"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=1000)
    parser.add_argument("--n", type=int, default=256)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    chromium = CHROMIUM
    if chromium is None:
        print("needs Debian's chromium (scripts/setup.sh --browser)", file=sys.stderr)
        return 2
    from playwright.sync_api import sync_playwright

    with private_redis(appendonly=False) as redis_server:
        group, url = redis_server.group, redis_server.url
        job_id = store_synthetic_job(url, store_job, args.prompts, args.n)
        env = {"PROBEVAL_REDIS_URL": url, "PROBEVAL_API_KEYS": f"bench:{KEY}"}
        base = start_gateway(group, "127.0.0.1", free_port(), env)
        runs = []
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            errors: list[str] = []
            for _ in range(args.runs):
                context = browser.new_context(viewport={"width": 1400, "height": 1000})
                context.add_init_script(f"sessionStorage.setItem('probeval.key', '{KEY}')")
                page = context.new_page()
                page.on("pageerror", lambda e: errors.append(str(e)))
                t0 = time.perf_counter()
                page.goto(f"{base}/ui/jobs/{job_id}", wait_until="commit")
                page.wait_for_selector('body[data-ready="yes"]', timeout=60_000)
                table_s = time.perf_counter() - t0
                page.wait_for_selector("#ecdfs[data-drawn]", timeout=60_000)
                ecdfs_s = time.perf_counter() - t0
                transferred = page.evaluate(
                    "performance.getEntriesByType('navigation').concat("
                    "performance.getEntriesByType('resource'))"
                    ".reduce((s, e) => s + (e.transferSize || e.encodedBodySize || 0), 0)"
                )
                rows = page.locator("#prompts tbody tr").count()
                marks = page.locator("#overview-svg g.prompt").count()
                assert not errors, errors
                assert marks == args.prompts, marks
                runs.append(
                    {
                        "table_s": round(table_s, 3),
                        "ecdfs_s": round(ecdfs_s, 3),
                        "bytes": transferred,
                        "rows_on_page": rows,
                    }
                )
                context.close()
            browser.close()
        load = os.getloadavg()
        print(json.dumps(runs, indent=2))
        print(
            json.dumps(
                {
                    "prompts": args.prompts,
                    "n": args.n,
                    "median_table_s": statistics.median(r["table_s"] for r in runs),
                    "median_ecdfs_s": statistics.median(r["ecdfs_s"] for r in runs),
                    "max_table_s": max(r["table_s"] for r in runs),
                    "loadavg_1_5_15": [round(x, 2) for x in load],
                }
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
