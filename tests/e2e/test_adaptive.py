"""Adaptive jobs end to end: real redis-server, gateway, scorer and a vLLM sampler on the tiny
model (the session `stack`). Rounds go through the real queues; the scorer schedules them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.stacks import Stack, requires_vllm

pytestmark = [pytest.mark.slow, pytest.mark.vllm, requires_vllm]

# Scorer `regex`: "." matches every non-empty draw (the answer is clear at once), "(?!)" never
# matches (clear after a few rounds), "e" matches some draws of the random-weight tiny model.
PATTERNS = {"every": ".", "never": "(?!)", "some": "e"}
STOPPING = {"target": "p_full", "threshold": 0.2, "min_n": 16, "max_n": 256, "round": 16}


def body(pattern: str, prompt_ids: list[str]) -> dict[str, Any]:
    return {
        "model": "tiny",
        "prompts": [{"id": p, "prompt": f"The story of {p} begins"} for p in prompt_ids],
        "sampling": {"temperature": 1.0, "max_tokens": 8, "seed": 11},
        "scorer": {"name": "regex", "pattern": pattern},
        "alpha": 0.05,
        "thresholds": [0.5],
        "greedy": False,
        "stopping": STOPPING,
    }


def stored_rows(c: Any, job_id: str, prompt_ids: list[str]) -> list[list[float]]:
    rows = []
    for p in prompt_ids:
        page = c.get(f"/v1/jobs/{job_id}/samples", params={"prompt_id": p, "limit": 1000}).json()
        indices = [s["index"] for s in page["samples"]]
        assert indices == list(range(len(indices))) and page["total"] == len(indices)
        rows.append([s["score"] for s in page["samples"]])
    return rows


def test_adaptive_jobs_stop_clear_prompts_early(stack: Stack, tmp_path: Path) -> None:
    ids = ["a", "b"]
    with stack.client() as c:
        jobs = {}
        for name, pattern in PATTERNS.items():
            resp = c.post("/v1/jobs", json=body(pattern, ids))
            assert resp.status_code == 202, resp.text
            jobs[name] = resp.json()["id"]
        for name, job_id in jobs.items():
            view = stack.wait_for_job(job_id)
            assert view["status"] == "succeeded", view
            assert view["adaptive"] == {"prompts_open": 0, "prompts_stopped": 2}
            results = c.get(f"/v1/jobs/{job_id}/results").json()
            seq = [p["sequential"] for p in results["prompts"]]
            if name == "every":
                assert [(s["decision"], s["n_used"]) for s in seq] == [("above", 16)] * 2
            if name == "never":
                assert all(s["decision"] == "below" and s["n_used"] < 256 for s in seq), seq
            rows = stored_rows(c, job_id, ids)
            # Stored draws are exactly n_used per prompt, at indices 0..n_used-1 ...
            assert [len(r) for r in rows] == [s["n_used"] for s in seq]
            assert view["progress"]["samples_done"] == sum(len(r) for r in rows)
            # ... and the reported sequence is `probeval bounds --sequential` on them.
            f = tmp_path / f"{name}.json"
            f.write_text(json.dumps({"scores": rows}))
            cli = subprocess.run(
                [sys.executable, "-m", "probeval", "bounds", "--sequential",
                 "--target", "p_full", "--threshold", "0.2", "--min-n", "16", "--max-n", "256",
                 "--round", "16", "--alpha", "0.05", "--survival", "0.5", str(f)],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            assert seq == json.loads(cli.stdout)["rows"]
