"""The tiny test model is deterministic per seed and loads with transformers (no vllm)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("torch", reason="the tiny model needs torch (installed with the sampler)")
pytest.importorskip("transformers", reason="the tiny model needs transformers")

from probeval.tiny_model import VOCAB_SIZE, build_tiny_model, weights_sha256  # noqa: E402


def test_same_seed_same_files_different_seed_different_weights(tmp_path: Path) -> None:
    a = build_tiny_model(tmp_path / "a", seed=0)
    b = build_tiny_model(tmp_path / "b", seed=0)
    c = build_tiny_model(tmp_path / "c", seed=1)
    assert weights_sha256(a) == weights_sha256(b)
    assert weights_sha256(a) != weights_sha256(c)
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_tokenizer_round_trips_text_with_bos_and_eos(tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    model_dir = build_tiny_model(tmp_path / "m")
    tok = AutoTokenizer.from_pretrained(model_dir)
    assert len(tok) == VOCAB_SIZE
    assert tok.chat_template is None
    assert tok.eos_token_id is not None and tok.eos_token_id < VOCAB_SIZE
    text = "The river runs past the mill. Ünïcode ✓"
    ids = tok(text)["input_ids"]
    assert ids[0] == tok.bos_token_id
    assert tok.decode(ids, skip_special_tokens=True) == text
    # Every id the model can emit decodes to text.
    assert isinstance(tok.decode(list(range(VOCAB_SIZE)), skip_special_tokens=True), str)
