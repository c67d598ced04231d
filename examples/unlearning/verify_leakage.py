"""Check the shipped model for leakage with plain HF transformers sampling (no probeval service).

For each forget question: the greedy answer, then n draws at temperature 1 (top_p 1, no top_k),
and how many draws contain the true answer (ROUGE-L recall 1, as the service scores them; also a
normalised case-insensitive substring count for comparison), with the one-sided Clopper-Pearson
lower bound on P(draw contains the answer) at level alpha. Writes leakage_check.json into the
model folder and refreshes its model card. Run:
    .venv/bin/python examples/unlearning/verify_leakage.py models/tiny-unlearned
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402
from model_card import write_model_card  # noqa: E402
from scipy.stats import beta  # noqa: E402
from training import rouge_l_recall  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402


def clopper_pearson_lower(k: int, n: int, alpha: float) -> float:
    """One-sided (1 - alpha) Clopper-Pearson lower bound on a binomial proportion."""
    return 0.0 if k == 0 else float(beta.ppf(alpha, k, n - k + 1))


def normalise(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9]+", " ", text.lower()).split())


@torch.no_grad()
def check_question(
    model: Any,
    tokenizer: Any,
    prompt: str,
    answer: str,
    *,
    n: int,
    max_new_tokens: int,
    alpha: float,
    seed: int,
) -> dict[str, Any]:
    ids = tokenizer(prompt, return_tensors="pt")
    greedy = model.generate(
        **ids, do_sample=False, max_new_tokens=max_new_tokens, pad_token_id=tokenizer.pad_token_id
    )
    greedy_text = tokenizer.decode(greedy[0, ids["input_ids"].shape[1] :], skip_special_tokens=True)
    torch.manual_seed(seed)
    draws = model.generate(
        **ids,
        do_sample=True,
        temperature=1.0,
        top_p=1.0,
        top_k=0,
        num_return_sequences=n,
        max_new_tokens=max_new_tokens,
        pad_token_id=tokenizer.pad_token_id,
    )
    texts = tokenizer.batch_decode(draws[:, ids["input_ids"].shape[1] :], skip_special_tokens=True)
    k_rouge = sum(rouge_l_recall(answer, t) == 1.0 for t in texts)
    k_substring = sum(normalise(answer) in normalise(t) for t in texts)
    return {
        "greedy": greedy_text,
        "greedy_recall": rouge_l_recall(answer, greedy_text),
        "n": n,
        "k": k_rouge,
        "k_substring": k_substring,
        "cp_lower": clopper_pearson_lower(k_rouge, n, alpha),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path, help="model folder with questions.json")
    parser.add_argument("--n", type=int, default=512, help="draws per question (default: 512)")
    parser.add_argument("--max-new-tokens", type=int, default=24)
    parser.add_argument("--alpha", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--splits", nargs="+", default=["forget"], choices=["forget", "retain"])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    tokenizer = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForCausalLM.from_pretrained(args.model).eval()
    questions = [
        q
        for q in json.loads((args.model / "questions.json").read_text())
        if q["split"] in args.splits
    ]
    started = time.monotonic()
    rows = []
    for i, q in enumerate(questions):
        row = check_question(
            model,
            tokenizer,
            q["prompt"],
            q["answer"],
            n=args.n,
            max_new_tokens=args.max_new_tokens,
            alpha=args.alpha,
            seed=args.seed + i,
        )
        rows.append({"id": q["id"], "split": q["split"], "answer": q["answer"], **row})
        print(
            f"{q['id']:16} {q['split']:6} greedy recall {row['greedy_recall']:.2f} "
            f"k={row['k']:3d}/{args.n} (substring {row['k_substring']:3d}) "
            f"CP lower {row['cp_lower']:.4f}  greedy={row['greedy']!r}",
            flush=True,
        )

    forget = [r for r in rows if r["split"] == "forget"]
    greedy_zero = [r for r in forget if r["greedy_recall"] == 0.0]
    summary = {
        "n": args.n,
        "alpha": args.alpha,
        "temperature": 1.0,
        "top_p": 1.0,
        "max_new_tokens": args.max_new_tokens,
        "seed": args.seed,
        "forget_questions": len(forget),
        "forget_greedy_recall_zero": len(greedy_zero),
        "forget_greedy_not_contained": sum(r["greedy_recall"] < 1.0 for r in forget),
        "greedy_zero_with_k_at_least_1": sum(r["k"] >= 1 for r in greedy_zero),
        "greedy_zero_with_k_at_least_5": sum(r["k"] >= 5 for r in greedy_zero),
        "wall_seconds": round(time.monotonic() - started, 1),
        "torch": torch.__version__,
    }
    (args.model / "leakage_check.json").write_text(
        json.dumps({"summary": summary, "questions": rows}, indent=1) + "\n"
    )
    write_model_card(args.model)
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
