"""End to end: the shipped model before unlearning against after, on the forget set, through
real processes (redis-server, gateway, scorer, one vLLM sampler per model), with the CLI's
``probeval compare A B`` talking to the real gateway. It runs the README's script
(examples/unlearning/compare_before_after.py) with a small n."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.stacks import requires_vllm

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "examples" / "unlearning" / "compare_before_after.py"

pytestmark = [pytest.mark.slow, requires_vllm]


def test_unlearning_lowers_leakage_on_the_forget_set(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("PROBEVAL_REDIS_URL", "REDIS_URL")}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    out = tmp_path / "compare.json"
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--n", "128", "--json-out", str(out),
         "--state-dir", str(tmp_path / "state")],
        env=env, capture_output=True, text=True, timeout=900, check=False, cwd=ROOT,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    print(result.stdout)  # the table (shown with pytest -s; the README's is from such a run)
    doc = json.loads(out.read_text())
    compare, plan = doc["compare"], doc["plan"]
    prompts = compare["prompts"]
    assert len(prompts) == 24 and compare["family"] == "holm"
    # Before unlearning the model answers its forget questions; after, it rarely does.
    assert sum(p["a"] for p in prompts) / 24 > 0.8
    assert sum(p["b"] for p in prompts) / 24 < 0.3
    assert compare["summary"]["b_higher"] == 0
    assert compare["summary"]["b_lower"] >= 18, compare["summary"]
    for p in prompts:
        assert p["lower"] <= p["difference"] <= p["upper"]
    # The CLI printed the same decisions as a table (through the real gateway).
    assert result.stdout.count("b lower") == compare["summary"]["b_lower"]
    # The planner priced the draws with the sampler's measured engine throughput.
    assert plan["n"] == 459
    assert plan["cost"]["workers"] == 1 and plan["cost"]["draws_per_s_per_worker"] > 0
