"""models/tiny-base: the model before unlearning, saved by the same script (--base-out).

Saving it must not change the unlearned model (the script draws no random numbers for it), and
the shipped copy must be complete and share the tokenizer and questions with tiny-unlearned.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "examples" / "unlearning" / "make_unlearned_model.py"
BASE = ROOT / "models" / "tiny-base"
UNLEARNED = ROOT / "models" / "tiny-unlearned"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _build(out: Path, *extra: str) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           "OMP_NUM_THREADS": "1"}  # fmt: skip
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--fast", "--seed", "3", "--threads", "1",
         "--out", str(out), *extra],
        env=env, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


# Trains the model in a subprocess (~40-60 s on 2 cores): with the slow tests, so that
# `make test-fast` stays short (CI runs both).
@pytest.mark.slow
def test_saving_the_base_model_leaves_the_unlearned_one_unchanged(tmp_path: Path) -> None:
    _build(tmp_path / "plain")
    _build(tmp_path / "with", "--base-out", str(tmp_path / "base"))
    assert _sha256(tmp_path / "plain" / "model.safetensors") == _sha256(
        tmp_path / "with" / "model.safetensors"
    )
    # The base model is a different set of weights (unlearning changed them) ...
    assert _sha256(tmp_path / "base" / "model.safetensors") != _sha256(
        tmp_path / "with" / "model.safetensors"
    )
    # ... with the same tokenizer and questions.
    for name in ("tokenizer.json", "questions.json"):
        assert _sha256(tmp_path / "base" / name) == _sha256(tmp_path / "with" / name)
    assert (tmp_path / "base" / "README.md").read_text().startswith("# tiny-base")


def test_shipped_base_model_is_complete_and_matches_tiny_unlearned() -> None:
    for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                 "generation_config.json", "README.md", "questions.json"):  # fmt: skip
        assert (BASE / name).is_file(), name
    assert sum(p.stat().st_size for p in BASE.iterdir()) < 8_000_000
    for name in ("tokenizer.json", "questions.json"):
        assert _sha256(BASE / name) == _sha256(UNLEARNED / name), name
    report = json.loads((BASE / "training_report.json").read_text())
    # The trained model answers every question greedily: nothing was unlearned yet.
    assert report["greedy"]["forget_acc"] == 1.0 and report["greedy"]["retain_acc"] == 1.0
