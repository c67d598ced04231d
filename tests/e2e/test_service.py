"""The service end to end with real processes and a real vLLM engine on a tiny model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.stacks import Stack, requires_vllm

pytestmark = [pytest.mark.slow, pytest.mark.vllm, requires_vllm]

PROMPTS = [
    {
        "id": "river",
        "prompt": "The river runs past the old",
        "reference": "mill and under the stone bridge",
    },
    {
        "id": "market",
        "prompt": "In the morning the market opens",
        "reference": "early and the farmers bring apples",
    },
    {"id": "sky", "prompt": "Explain why the sky is", "reference": "blue"},
]


def hf_greedy(model_path: Path, prompt: str, max_tokens: int) -> str:
    """A temperature-0 generation of the same model by Hugging Face transformers, float32."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_path)
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32)
    ids = tok(prompt, return_tensors="pt").input_ids
    with torch.no_grad():
        out = model.generate(ids, max_new_tokens=max_tokens, do_sample=False)
    return str(tok.decode(out[0, ids.shape[1] :], skip_special_tokens=True))


def test_job_end_to_end(stack: Stack, tmp_path: Path) -> None:
    body = {
        "model": "tiny",
        "prompts": PROMPTS,
        "sampling": {"n": 64, "temperature": 1.0, "max_tokens": 12},
        "scorer": {"name": "rouge_l_recall"},
        "alpha": 0.05,
        "thresholds": [0.0, 0.2, 0.5],
        "quantiles": [0.5, 0.9],
        "ed_lambda": 1.5,
        "greedy": True,
    }
    with stack.client() as c:
        models = c.get("/v1/models").json()["models"]
        assert models[0]["name"] == "tiny" and models[0]["workers"] == 1
        assert "vllm" in models[0]["engine"]

        resp = c.post("/v1/jobs", json=body)
        assert resp.status_code == 202, resp.text
        job_id = resp.json()["id"]
        assert resp.headers["location"] == f"/v1/jobs/{job_id}"

        view = stack.wait_for_job(job_id)
        assert view["status"] == "succeeded", view
        assert view["progress"] == {"samples_done": 192, "samples_total": 192}

        results = c.get(f"/v1/jobs/{job_id}/results").json()
        assert [p["id"] for p in results["prompts"]] == [p["id"] for p in PROMPTS]
        rows = []
        for spec, prompt in zip(PROMPTS, results["prompts"], strict=True):
            page = c.get(
                f"/v1/jobs/{job_id}/samples", params={"prompt_id": spec["id"], "limit": 1000}
            ).json()
            assert page["total"] == 64
            indices = [s["index"] for s in page["samples"]]
            assert indices == list(range(64))  # exactly n draws, distinct indices
            rows.append([s["score"] for s in page["samples"]])
            assert prompt["n"] == 64
            # vLLM's incremental detokenizer holds back a trailing incomplete UTF-8 sequence
            # that a one-shot decode renders as U+FFFD; the tokens are the same.
            expected = hf_greedy(stack.model_path, spec["prompt"], 12).rstrip("\ufffd")
            assert prompt["greedy"]["text"].rstrip("\ufffd") == expected

    # The reported bounds are exactly what `probeval bounds` computes from the stored scores.
    scores_file = tmp_path / "scores.json"
    scores_file.write_text(json.dumps({"scores": rows}))
    cli = subprocess.run(
        [
            sys.executable,
            "-m",
            "probeval",
            "bounds",
            "--alpha",
            "0.05",
            "--threshold",
            "0.0",
            "--threshold",
            "0.2",
            "--threshold",
            "0.5",
            "--quantile",
            "0.5",
            "--quantile",
            "0.9",
            "--ed-lambda",
            "1.5",
            str(scores_file),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert [p["bounds"] for p in results["prompts"]] == json.loads(cli.stdout)["rows"]
