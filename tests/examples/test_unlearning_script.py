"""The unlearned-model script is deterministic, and the model it made is shipped intact.

The script runs in subprocesses (its --fast configuration, one thread) so that this test needs
no torch import of its own and each run starts from a fresh interpreter, as a user's would.
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
SHIPPED = ROOT / "models" / "tiny-unlearned"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _build(out: Path, seed: int) -> Path:
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "OMP_NUM_THREADS": "1",
    }
    result = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--fast",
            "--seed",
            str(seed),
            "--threads",
            "1",
            "--out",
            str(out),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return out


# Trains the model twice in subprocesses (~40 s on 2 cores): the largest part of the fast suite's
# time, so it runs with the slow tests (CI runs both; `make test-fast` stays short).
@pytest.mark.slow
def test_same_seed_gives_same_weights_and_tokenizer(tmp_path: Path) -> None:
    first = _build(tmp_path / "first", seed=7)
    second = _build(tmp_path / "second", seed=7)
    for name in ("model.safetensors", "tokenizer.json", "questions.json", "config.json"):
        assert _sha256(first / name) == _sha256(second / name), name
    report = json.loads((first / "training_report.json").read_text())
    assert report["train_steps"] > 0 and report["unlearn_steps"] > 0
    assert json.loads((first / "config.json").read_text())["architectures"] == ["LlamaForCausalLM"]
    assert (first / "README.md").read_text().startswith("# tiny-unlearned")


def test_shipped_model_is_complete_and_small() -> None:
    if not SHIPPED.exists():
        pytest.fail(f"{SHIPPED} is missing: run {SCRIPT.relative_to(ROOT)}")
    for name in (
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "generation_config.json",
        "README.md",
        "questions.json",
    ):
        assert (SHIPPED / name).is_file(), name
    total = sum(p.stat().st_size for p in SHIPPED.iterdir() if p.is_file())
    assert total <= 20 * 1024 * 1024
    config = json.loads((SHIPPED / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"]
    questions = json.loads((SHIPPED / "questions.json").read_text())
    assert {q["split"] for q in questions} == {"forget", "retain"}
    assert len({q["id"] for q in questions}) == len(questions)
    for q in questions:
        assert set(q) >= {"id", "prompt", "question", "answer", "split"}
        assert q["prompt"] == f"Question: {q['question']}\nAnswer:"
