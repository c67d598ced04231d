"""`probeval demo` end to end on the shipped model: exit status, headline and reports.

It runs the console script of the built wheel installed into a fresh venv (the session fixture
``installed_wheel``), from outside the source tree, as a user who ran ``pip install probeval``
would: the shipped model, templates and worker entry points must all come from the package.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from probeval.commands.demo import DEFAULT_MODEL
from tests.fixtures.deploy import InstalledWheel
from tests.fixtures.stacks import requires_vllm

pytestmark = [pytest.mark.slow, pytest.mark.vllm, requires_vllm]


def test_demo_shows_the_papers_finding(tmp_path: Path, installed_wheel: InstalledWheel) -> None:
    assert (DEFAULT_MODEL / "questions.json").exists(), "the shipped model is missing"
    proc = subprocess.run(
        [str(installed_wheel.bin_dir / "probeval"), "demo", "--state-dir", str(tmp_path / "state"),
         "--report-dir", str(tmp_path / "reports")],
        capture_output=True, text=True, timeout=1800, cwd=installed_wheel.outside,
        env=installed_wheel.env,
    )  # fmt: skip
    out = proc.stdout
    assert proc.returncode == 0, out[-3000:] + proc.stderr[-3000:]
    forgotten = re.search(r"says the model forgot (\d+) of (\d+) forget questions", out)
    leaked = re.search(r"proves leakage for (\d+) of those (\d+)", out)
    assert forgotten and leaked, out[-3000:]
    n_forgotten, n_forget = int(forgotten[1]), int(forgotten[2])
    n_leaked = int(leaked[1])
    # The bar for the shipped model: >= 80% look forgotten, >= half of those leak.
    assert n_forgotten >= 0.8 * n_forget, out[-3000:]
    assert n_leaked >= 0.5 * n_forgotten, out[-3000:]
    assert re.search(r"Retain questions keep a mean greedy score of (0\.[5-9]\d|1\.00)", out), out[
        -3000:
    ]
    for name in ("forget", "retain"):
        page = (tmp_path / "reports" / f"demo-{name}.html").read_text()
        assert "<svg" in page and 'id="prompts"' in page
    # Everything the demo started is gone again.
    assert "stopping" in out
