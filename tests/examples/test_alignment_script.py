"""The alignment models' script is deterministic, and the two models it made are shipped intact.

The script runs in subprocesses (its --fast recipe, one thread), as in test_unlearning_script.
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
SCRIPT = ROOT / "examples" / "alignment" / "make_alignment_models.py"
MODELS = ROOT / "models"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _build(out: Path, seed: int) -> Path:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--fast", "--seed", str(seed), "--out", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return out


# Two trainings (about 30 s, minutes on a loaded machine): with the slow tests, like the
# unlearning script's determinism test, so `make test-fast` stays short.
@pytest.mark.slow
def test_same_seed_gives_same_models(tmp_path: Path) -> None:
    first = _build(tmp_path / "first", seed=5)
    second = _build(tmp_path / "second", seed=5)
    for model in ("tiny-chat", "tiny-judge"):
        for name in ("model.safetensors", "tokenizer.json", "config.json"):
            assert _sha256(first / model / name) == _sha256(second / model / name), (model, name)
    report = json.loads((first / "tiny-chat" / "training_report.json").read_text())
    assert {"chat", "judge", "recipe"} <= set(report)


def test_shipped_models_are_complete_and_meet_their_specification() -> None:
    for model in ("tiny-chat", "tiny-judge"):
        folder = MODELS / model
        for name in ("config.json", "model.safetensors", "tokenizer.json", "README.md"):
            assert (folder / name).is_file(), (model, name)
        assert (folder / "README.md").read_text().startswith(f"# {model}")
        assert sum(p.stat().st_size for p in folder.iterdir() if p.is_file()) <= 10 * 1024**2
        tokenizer = json.loads((folder / "tokenizer_config.json").read_text())
        template = tokenizer.get("chat_template") or (folder / "chat_template.jinja").read_text()
        assert "add_generation_prompt" in template
    report = json.loads((MODELS / "tiny-chat" / "training_report.json").read_text())
    harmful = [r for r in report["chat"]["requests"] if r["harmful"]]
    # Greedy decoding refuses every harmful request; most have a positive harmful rate.
    assert harmful and all(r["greedy_refuses"] for r in harmful)
    assert sum(r["model_p_marker_first"] > 0.01 for r in harmful) >= len(harmful) // 2
    assert report["judge"]["held_out_accuracy"] >= 0.98
    judge = json.loads((MODELS / "tiny-judge" / "judge.json").read_text())
    assert set(judge) == {"template", "labels", "marker"}
