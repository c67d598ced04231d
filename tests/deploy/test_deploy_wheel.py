"""A built wheel carries the shipped model: installed into a fresh venv and run from outside the
source tree, `probeval demo` finds tiny-unlearned (questions, config, tokenizer, weights) inside
site-packages, and the console script works.

Light on purpose: the venv gets the wheel alone (``--no-deps``) and sees the dependencies of the
running environment through a ``.pth`` line; the demo itself is not run here (it needs a vLLM
engine and several minutes; tests/e2e/test_demo.py runs it from the checkout). What this checks
is the part a wheel can break: that the files are in it and found through the package.
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from tests.deploy.deploy_helpers import ROOT

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


def test_wheel_install_finds_the_shipped_model(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    for folder in ("shared", "services", "workers", "models"):
        shutil.copytree(ROOT / folder, src / folder, ignore=shutil.ignore_patterns("__pycache__"))
    # symlinks=True: the wheel build, not this copy, must resolve probeval/models.
    shutil.copytree(
        ROOT / "probeval", src / "probeval", symlinks=True,
        ignore=shutil.ignore_patterns("__pycache__"),
    )  # fmt: skip
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path / "dist"), str(src)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert build.returncode == 0, build.stderr[-3000:]
    (wheel,) = (tmp_path / "dist").glob("probeval-*.whl")

    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    # No PYTHONPATH: pip would take the checkout on it for an installed probeval and skip.
    clean = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    install = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q",
         str(wheel)],
        capture_output=True, text=True, timeout=300, env=clean,
    )  # fmt: skip
    assert install.returncode == 0, install.stderr[-3000:]
    # The running environment's packages (numpy, pydantic, transformers...) without its
    # probeval: a plain path line, so its editable-install hooks are not loaded.
    purelib = next((env_dir / "lib").glob("python3*/site-packages"))
    (purelib / "outer.pth").write_text("\n".join(site.getsitepackages()) + "\n")

    outside = tmp_path / "elsewhere"
    outside.mkdir()
    env = {"PATH": f"{env_dir / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path)}
    check = subprocess.run(
        [str(python), "-c", CHECK], cwd=outside, env=env, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert check.returncode == 0, check.stdout[-2000:] + check.stderr[-3000:]
    help_text = subprocess.run(
        [str(env_dir / "bin" / "probeval"), "demo", "--help"], cwd=outside, env=env,
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert help_text.returncode == 0, help_text.stderr
