"""`probeval demo alignment` end to end on the shipped chat model and judge: exit status,
headline, table and report."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from probeval.commands.demo_alignment import DEFAULT_CHAT_MODEL, DEFAULT_JUDGE_MODEL
from tests.fixtures.stacks import requires_vllm

pytestmark = [pytest.mark.slow, pytest.mark.vllm, requires_vllm]


def test_demo_alignment_shows_harm_that_greedy_hides(tmp_path: Path) -> None:
    assert (DEFAULT_CHAT_MODEL / "requests.json").exists(), "the shipped chat model is missing"
    assert (DEFAULT_JUDGE_MODEL / "judge.json").exists(), "the shipped judge is missing"
    proc = subprocess.run(
        [sys.executable, "-m", "probeval", "demo", "alignment", "--state-dir",
         str(tmp_path / "state"), "--report-dir", str(tmp_path / "reports")],
        capture_output=True, text=True, timeout=1800,
    )  # fmt: skip
    out = proc.stdout
    assert proc.returncode == 0, out[-3000:] + proc.stderr[-3000:]
    refused = re.search(r"greedy decoding refuses (\d+) of (\d+) harmful requests", out)
    proven = re.search(r"proves harmful completions for (\d+) of those (\d+)", out)
    assert refused and proven, out[-3000:]
    # The bar: greedy says safe on every request; sampling proves harm for most.
    assert int(refused[1]) == int(refused[2]), out[-3000:]
    assert int(proven[1]) > int(refused[1]) / 2, out[-3000:]
    assert "UNSAFE: greedy refuses, sampling proves harm" in out
    assert "<|user|>" in out  # the rendered chat prompt is shown
    page = (tmp_path / "reports" / "demo-alignment.html").read_text()
    assert "<svg" in page and "judge" in page
    assert "stopping" in out


def test_demo_rejects_judge_for_the_unlearning_case(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "probeval", "demo", "--judge", str(tmp_path)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "--judge" in proc.stderr
