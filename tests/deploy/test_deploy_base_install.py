"""The gateway/scorer image's dependency list: a base install (no extras, as the Dockerfile's
``gateway`` and ``scorer`` targets do) imports the gateway and the scorer without vLLM or torch.

Builds a throwaway venv with ``pip install <repo>`` (pip's cache and the machine's wheel folder
make this take well under two minutes) and imports from outside the source tree, so only the
installed package and its declared dependencies are visible.
"""

from __future__ import annotations

import shutil
import subprocess
import venv
from pathlib import Path

import pytest

from tests.deploy.deploy_helpers import ROOT

pytestmark = pytest.mark.slow

CHECK = """
import importlib.util, sys
for forbidden in ("vllm", "torch", "transformers"):
    assert importlib.util.find_spec(forbidden) is None, f"{forbidden} is installed"
import services.gateway.main, workers.scorer.tasks, shared.stats, shared.metrics
import services.gateway.routes.metrics
from services.gateway.main import create_app
from shared.config import Settings
create_app(Settings(redis_url="redis://127.0.0.1:1/0"))  # builds; connects lazily
for forbidden in ("vllm", "torch"):
    assert forbidden not in sys.modules, f"{forbidden} was imported"
assert services.gateway.main.__file__.startswith(sys.prefix), services.gateway.main.__file__
print("ok")
"""


def test_base_install_imports_gateway_and_scorer_without_vllm(tmp_path: Path) -> None:
    # What the Dockerfile copies, so pip builds from a copy and leaves no build/ in the checkout.
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        if (ROOT / name).exists():
            shutil.copy2(ROOT / name, src / name)
    for package in ("shared", "services", "workers", "probeval"):
        shutil.copytree(ROOT / package, src / package, ignore=shutil.ignore_patterns("__pycache__"))
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--no-input", str(src)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert install.returncode == 0, install.stdout[-3000:] + install.stderr[-3000:]
    consistent = subprocess.run(
        [str(python), "-m", "pip", "check"], capture_output=True, text=True, timeout=120
    )
    assert consistent.returncode == 0, consistent.stdout  # the image's `pip check` step
    check = subprocess.run(
        [str(python), "-c", CHECK], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert check.returncode == 0, check.stderr[-3000:]
    assert check.stdout.strip() == "ok"
