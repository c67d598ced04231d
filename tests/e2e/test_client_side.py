"""The client side as a user meets it, on the session stack (real redis-server, gateway, scorer
and a vLLM sampler on the tiny model): the SSE stream of a real job, rescoring without new
draws, `probeval submit --wait` on a job file, and exports read back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import yaml

from probeval.client import Client
from shared import keys
from shared.store import connect
from tests.fixtures.stacks import Stack, requires_vllm

pytestmark = [pytest.mark.slow, pytest.mark.vllm, requires_vllm]

PROMPTS = [
    {"id": "river", "prompt": "The river runs past the old", "reference": "the"},
    {"id": "sky", "prompt": "Explain why the sky is", "reference": "a"},
]


def job(n: int = 96) -> dict[str, Any]:
    return {
        "model": "tiny",
        "prompts": PROMPTS,
        "sampling": {"n": n, "temperature": 1.0, "max_tokens": 8},
        "scorer": {"name": "rouge_l_recall"},
        "alpha": 0.05,
        "thresholds": [0.5],
        "quantiles": [0.9],
        "greedy": True,
    }


def cli(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PROBEVAL_URL": stack.base}
    return subprocess.run(
        [sys.executable, "-m", "probeval", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )


def generated(stack: Stack) -> dict[str, str]:
    return dict(connect(stack.env["PROBEVAL_REDIS_URL"]).hgetall(keys.METRICS_DRAWS_GENERATED))


def test_sse_stream_then_rescore_without_new_draws(stack: Stack, tmp_path: Path) -> None:
    with Client(stack.base) as c:
        job_id = c.submit(job()).id
        events = [(e.event, json.loads(e.data)) for e in c.events(job_id)]
        kinds = [k for k, _ in events]
        assert kinds[-1] == "end" and kinds.count("end") == 1, kinds
        assert "progress" in kinds
        end = events[-1][1]
        assert end["status"] == "succeeded"
        assert end["progress"] == {"samples_done": 192, "samples_total": 192}
        done = [d["progress"]["samples_done"] for k, d in events if k == "progress"]
        assert done == sorted(done) and all(d["id"] == job_id for _, d in events)

        before = generated(stack)
        rescored = c.rescore(job_id, {"name": "contains"}, alpha=0.1).id
        view = c.wait(rescored)
        assert view.status.value == "succeeded" and view.source_job == job_id
        results = c.results(rescored)
        assert results.source_job == job_id
        assert generated(stack) == before  # the sampler drew nothing for the rescore

        # By hand: `contains` on the source's exported draws, then `probeval bounds`.
        draws = list(c.samples(job_id))
        rows = [
            [
                float(p["reference"].casefold() in d.text.casefold())
                for d in draws
                if d.prompt_id == p["id"]
            ]
            for p in PROMPTS
        ]
        assert [len(r) for r in rows] == [96, 96]
        scores = tmp_path / "scores.json"
        scores.write_text(json.dumps({"scores": rows}))
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "probeval",
                "bounds",
                "--alpha",
                "0.1",
                "--threshold",
                "0.5",
                "--quantile",
                "0.9",
                str(scores),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        by_hand = json.loads(out.stdout)["rows"]
        assert [p.bounds.model_dump(by_alias=True) for p in results.prompts] == by_hand


def test_cli_submit_wait_and_exports_read_back(stack: Stack, tmp_path: Path) -> None:
    spec = tmp_path / "job.yaml"
    spec.write_text(yaml.safe_dump(job(n=64)))
    done = cli(stack, "submit", str(spec), "--wait", "--format", "json")
    assert done.returncode == 0, done.stderr
    job_id, _, rest = done.stdout.partition("\n")
    results = json.loads(rest)
    assert results["id"] == job_id and results["status"] == "succeeded"
    assert [p["n"] for p in results["prompts"]] == [64, 64]
    assert "128/128" in done.stderr and "draw" in done.stderr  # the tqdm bar, in draws

    status = cli(stack, "status", job_id)
    assert json.loads(status.stdout)["status"] == "succeeded"
    assert job_id in cli(stack, "jobs", "--status", "succeeded").stdout
    table = cli(stack, "results", job_id).stdout
    assert "river" in table and "sky" in table

    with Client(stack.base) as c:
        expected = [d.model_dump() for d in c.samples(job_id)]
        by_page = c.http.get(
            f"/v1/jobs/{job_id}/samples", params={"prompt_id": "sky", "limit": 1000}
        ).json()["samples"]
    assert [d for d in expected if d["prompt_id"] == "sky"] == [
        {"prompt_id": "sky", **s} for s in by_page
    ]
    parquet = tmp_path / "draws.parquet"
    out = cli(stack, "export", job_id, "--format", "parquet", "-o", str(parquet))
    assert out.returncode == 0, out.stderr
    assert pq.read_table(parquet).to_pylist() == expected
    jsonl = tmp_path / "draws.jsonl"
    assert cli(stack, "export", job_id, "--format", "jsonl", "-o", str(jsonl)).returncode == 0
    assert [json.loads(line) for line in jsonl.read_text().splitlines()] == expected
    csv_path = tmp_path / "results.csv"
    assert cli(stack, "export", job_id, "--format", "csv", "-o", str(csv_path)).returncode == 0
    assert csv_path.read_text().splitlines()[0].startswith("id,n,")

    # A bad job file: exit 2, one line on stderr naming the field.
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**job(), "sampling": {"n": 0}}))
    refused = cli(stack, "submit", str(bad))
    assert refused.returncode == 2 and refused.stdout == ""
    assert len(refused.stderr.strip().splitlines()) == 1 and "sampling.n" in refused.stderr
    # A job the gateway refuses (no sampler serves the model): exit 2, the API's error line.
    unknown = tmp_path / "unknown.json"
    unknown.write_text(json.dumps({**job(), "model": "nope"}))
    refused = cli(stack, "submit", str(unknown))
    assert refused.returncode == 2 and "404 not_found (model)" in refused.stderr
