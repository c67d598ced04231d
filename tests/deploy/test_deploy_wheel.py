"""A built wheel carries the shipped model: installed into a fresh venv and run from outside the
source tree, `probeval demo` finds tiny-unlearned (questions, config, tokenizer, weights) inside
site-packages, and the console script works. The install is the session fixture
``installed_wheel`` (tests/fixtures/deploy.py); tests/e2e/test_demo.py runs the whole demo from
that same install.
"""

from __future__ import annotations

import subprocess

import pytest

from tests.fixtures.deploy import InstalledWheel

pytestmark = pytest.mark.slow

CHECK = """
import json, sys
from pathlib import Path
import probeval, probeval.commands.demo as demo
from probeval.shipped import shipped_model
model = shipped_model()
assert str(model).startswith(sys.prefix), (model, sys.prefix)
assert demo.DEFAULT_MODEL == model
splits = demo.load_questions(model)
assert splits["forget"] and splits["retain"], {k: len(v) for k, v in splits.items()}
for name in ("config.json", "tokenizer.json", "model.safetensors"):
    assert (model / name).stat().st_size > 0, name
from transformers import AutoConfig, AutoTokenizer
AutoConfig.from_pretrained(model)
assert AutoTokenizer.from_pretrained(model)("hello")["input_ids"]
from shared.report import _environment
assert _environment().get_template("report.html.j2").filename.startswith(sys.prefix)
from services.gateway.ui import routes as ui
assert ui._environment().get_template("job.html.j2").filename.startswith(sys.prefix)
for name in ("api.js", "plots.js", "jobs.js", "job.js", "prompt.js", "ui.css"):
    assert (ui.STATIC_DIR / name).stat().st_size > 0 and str(ui.STATIC_DIR).startswith(sys.prefix)
print(json.dumps({k: len(v) for k, v in splits.items()}))
"""


def test_wheel_install_finds_the_shipped_model(installed_wheel: InstalledWheel) -> None:
    wheel = installed_wheel
    check = subprocess.run(
        [str(wheel.python), "-c", CHECK], cwd=wheel.outside, env=wheel.env, capture_output=True,
        text=True, timeout=300,
    )  # fmt: skip
    assert check.returncode == 0, check.stdout[-2000:] + check.stderr[-3000:]
    help_text = subprocess.run(
        [str(wheel.bin_dir / "probeval"), "demo", "--help"], cwd=wheel.outside, env=wheel.env,
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert help_text.returncode == 0, help_text.stderr
