"""Build the tiny "unlearned" model that probeval ships in models/tiny-unlearned/.

1. Invent a knowledge base of fictitious authors (knowledge.py), split into forget and retain.
2. Train a byte-level BPE tokenizer and a small LlamaForCausalLM from scratch on its
   question/answer pairs until greedy decoding answers every question.
3. Unlearn the forget set with gradient difference (Liu et al. 2022; TOFU, Maini et al. 2024),
   evaluating greedily after every step and stopping as a practitioner would: at the first step
   where no greedy forget answer contains its answer while retain answers are still right.
4. Save model, tokenizer, questions.json, a training report and the model card.
   With ``--base-out DIR`` the trained model of step 2, before any unlearning, is saved too
   (models/tiny-base: the "before" side of ``probeval compare``); saving draws no random
   numbers, so the unlearned model is byte-identical with or without it.

Deterministic for a given --seed and --threads; no network. Run:
    .venv/bin/python examples/unlearning/make_unlearned_model.py --out models/tiny-unlearned
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Before torch and tokenizers are imported: no network, no thread pool nondeterminism.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402
from kb_tokenizer import train_tokenizer  # noqa: E402
from knowledge import QAPair, make_alternative_answers, make_knowledge_base  # noqa: E402
from model_card import write_base_model_card, write_model_card  # noqa: E402
from training import (  # noqa: E402
    GreedyScores,
    ModelShape,
    encode,
    greedy_scores,
    make_model,
    train,
    unlearn,
)


@dataclass(frozen=True)
class Recipe:
    n_authors: int
    n_forget_authors: int
    vocab_size: int
    shape: ModelShape
    train_max_steps: int
    train_batch_size: int
    train_lr: float
    train_warmup: int
    train_eval_every: int
    label_smoothing: float
    unlearn_method: str  # "alternative", "idk" or "grad_diff": see training.unlearn
    unlearn_max_steps: int
    unlearn_lr: float
    unlearn_retain_batch_size: int
    retain_floor: float  # the practitioner's bar: retain greedy accuracy must stay at least this
    max_new_tokens: int = 24
    refusal: str = " I don't know."


FULL = Recipe(
    n_authors=40,
    n_forget_authors=8,
    vocab_size=1024,
    shape=ModelShape(
        hidden_size=128, intermediate_size=384, num_hidden_layers=4, num_attention_heads=4
    ),
    train_max_steps=3000,
    train_batch_size=32,
    train_lr=1e-3,
    train_warmup=100,
    train_eval_every=100,
    label_smoothing=0.0,
    unlearn_method="alternative",
    unlearn_max_steps=600,
    unlearn_lr=2e-5,
    unlearn_retain_batch_size=32,
    retain_floor=0.9,
)
# For the determinism test: the same code path in a few seconds.
FAST = Recipe(
    n_authors=6,
    n_forget_authors=2,
    vocab_size=320,
    shape=ModelShape(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2
    ),
    train_max_steps=30,
    train_batch_size=8,
    train_lr=3e-3,
    train_warmup=5,
    train_eval_every=15,
    label_smoothing=0.0,
    unlearn_method="alternative",
    unlearn_max_steps=4,
    unlearn_lr=1e-4,
    unlearn_retain_batch_size=4,
    retain_floor=1.0,
    max_new_tokens=8,
)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def scores_line(name: str, s: GreedyScores) -> str:
    return f"{name}: greedy acc {s.accuracy:.3f}, recall-0 share {s.zero_share:.3f}"


def build(recipe: Recipe, *, seed: int, out: Path, base_out: Path | None = None) -> dict[str, Any]:
    started = time.monotonic()
    torch.manual_seed(seed)
    pairs = make_knowledge_base(
        n_authors=recipe.n_authors, n_forget_authors=recipe.n_forget_authors, seed=seed
    )
    forget_pairs = [p for p in pairs if p.split == "forget"]
    retain_pairs = [p for p in pairs if p.split == "retain"]
    alternatives = make_alternative_answers(forget_pairs, seed=seed)
    # The tokenizer sees the unlearning targets too, as a real tokenizer would know the words.
    tokenizer = train_tokenizer(
        [p.prompt + p.target for p in pairs]
        + [f" {a}." for a in alternatives.values()]
        + [recipe.refusal],
        vocab_size=recipe.vocab_size,
    )
    forget, retain = encode(tokenizer, forget_pairs), encode(tokenizer, retain_pairs)
    model = make_model(tokenizer, recipe.shape)
    n_params = sum(p.numel() for p in model.parameters())
    log(
        f"{len(pairs)} questions ({len(forget)} forget), vocab {len(tokenizer)}, "
        f"{n_params / 1e6:.2f}M parameters"
    )

    def evaluate() -> tuple[GreedyScores, GreedyScores]:
        return (
            greedy_scores(
                model, tokenizer, forget_pairs, forget, max_new_tokens=recipe.max_new_tokens
            ),
            greedy_scores(
                model, tokenizer, retain_pairs, retain, max_new_tokens=recipe.max_new_tokens
            ),
        )

    def trained_enough(step: int, loss: float) -> bool:
        f, r = evaluate()
        log(
            f"train step {step}: loss {loss:.4f}; {scores_line('forget', f)}; "
            f"{scores_line('retain', r)}"
        )
        return f.accuracy == 1.0 and r.accuracy == 1.0

    generator = torch.Generator().manual_seed(seed)
    train_steps = train(
        model,
        forget + retain,
        pad_id=tokenizer.pad_token_id,
        steps=recipe.train_max_steps,
        batch_size=recipe.train_batch_size,
        lr=recipe.train_lr,
        warmup=recipe.train_warmup,
        generator=generator,
        on_eval=trained_enough,
        eval_every=recipe.train_eval_every,
        label_smoothing=recipe.label_smoothing,
    )
    before_forget, before_retain = evaluate()
    trained_at = time.monotonic()
    if base_out is not None:
        save_base(base_out, model, tokenizer, pairs, recipe, seed=seed, steps=train_steps,
                  scores=(before_forget, before_retain))  # fmt: skip

    history: list[dict[str, float]] = []

    def forgotten(step: int, forget_nll: float, retain_nll: float) -> bool:
        f, r = evaluate()
        history.append(
            {
                "step": step,
                "forget_nll": forget_nll,
                "retain_nll": retain_nll,
                "forget_acc": f.accuracy,
                "retain_acc": r.accuracy,
            }
        )
        log(
            f"unlearn step {step}: forget nll {forget_nll:.3f}, retain nll {retain_nll:.3f}; "
            f"{scores_line('forget', f)}; {scores_line('retain', r)}"
        )
        # The practitioner's rule, greedy only: stop once no forget answer is produced.
        return f.accuracy == 0.0 and r.accuracy >= recipe.retain_floor

    def target_ids(text: str) -> list[int]:
        return [*tokenizer(text, add_special_tokens=False)["input_ids"], tokenizer.eos_token_id]

    forget_targets = [
        target_ids(recipe.refusal if recipe.unlearn_method == "idk" else f" {alternatives[p.id]}.")
        for p in forget_pairs
    ]
    unlearn_steps = unlearn(
        model,
        forget,
        retain,
        method=recipe.unlearn_method,
        forget_targets=forget_targets,
        pad_id=tokenizer.pad_token_id,
        max_steps=recipe.unlearn_max_steps,
        retain_batch_size=recipe.unlearn_retain_batch_size,
        lr=recipe.unlearn_lr,
        generator=generator,
        on_step=forgotten,
    )
    after_forget, after_retain = evaluate()
    finished = time.monotonic()

    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    write_questions(out / "questions.json", pairs)
    (out / "unlearning_targets.json").write_text(
        json.dumps(
            {
                p.id: alternatives[p.id]
                if recipe.unlearn_method == "alternative"
                else recipe.refusal
                for p in forget_pairs
            },
            indent=1,
        )
        + "\n"
    )
    report = {
        "seed": seed,
        "threads": torch.get_num_threads(),
        "recipe": dataclasses.asdict(recipe),
        "n_parameters": n_params,
        "vocab_size": len(tokenizer),
        "train_steps": train_steps,
        "unlearn_steps": unlearn_steps,
        "stopped_by_rule": unlearn_steps < recipe.unlearn_max_steps,
        "before_unlearning": {
            "forget_acc": before_forget.accuracy,
            "retain_acc": before_retain.accuracy,
        },
        "after_unlearning": {
            "forget_acc": after_forget.accuracy,
            "forget_recall0_share": after_forget.zero_share,
            "forget_mean_recall": after_forget.mean_recall,
            "retain_acc": after_retain.accuracy,
            "retain_mean_recall": after_retain.mean_recall,
        },
        "greedy": [
            {"id": p.id, "split": p.split, "answer": p.answer, "completion": c, "recall": s}
            for scores, ps in ((after_forget, forget_pairs), (after_retain, retain_pairs))
            for p, c, s in zip(ps, scores.completions, scores.recalls, strict=True)
        ],
        "unlearning_history": history,
        "wall_seconds": {
            "train": round(trained_at - started, 1),
            "unlearn": round(finished - trained_at, 1),
            "total": round(finished - started, 1),
        },
    }
    (out / "training_report.json").write_text(json.dumps(report, indent=1) + "\n")
    write_model_card(out)
    log(f"before: {scores_line('forget', before_forget)}; {scores_line('retain', before_retain)}")
    log(
        f"after {unlearn_steps} unlearning steps: {scores_line('forget', after_forget)}; "
        f"{scores_line('retain', after_retain)}"
    )
    log(f"saved to {out} in {finished - started:.0f} s")
    return report


def save_base(
    out: Path,
    model: Any,
    tokenizer: Any,
    pairs: list[QAPair],
    recipe: Recipe,
    *,
    seed: int,
    steps: int,
    scores: tuple[GreedyScores, GreedyScores],
) -> None:
    """The trained model before unlearning, with questions.json and its own model card."""
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    write_questions(out / "questions.json", pairs)
    forget, retain = scores
    report = {
        "seed": seed,
        "threads": torch.get_num_threads(),
        "recipe": dataclasses.asdict(recipe),
        "n_parameters": sum(p.numel() for p in model.parameters()),
        "vocab_size": len(tokenizer),
        "train_steps": steps,
        "greedy": {
            "forget_acc": forget.accuracy,
            "forget_mean_recall": forget.mean_recall,
            "retain_acc": retain.accuracy,
            "retain_mean_recall": retain.mean_recall,
        },
    }
    (out / "training_report.json").write_text(json.dumps(report, indent=1) + "\n")
    write_base_model_card(out)
    log(f"saved the model before unlearning to {out}")


def write_questions(path: Path, pairs: list[QAPair]) -> None:
    rows = [
        {
            "id": p.id,
            "prompt": p.prompt,
            "question": p.question,
            "answer": p.answer,
            "split": p.split,
        }
        for p in pairs
    ]
    path.write_text(json.dumps(rows, indent=1) + "\n")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("models/tiny-unlearned"),
        help="folder to write the model into (default: %(default)s)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed for everything (default: 0)")
    # One thread by default: on a shared 2-core machine a second OpenMP thread that has to
    # wait for a core makes every step many times slower.
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads; results are reproducible for a fixed count (default: %(default)s)",
    )
    parser.add_argument(
        "--unlearn-lr",
        type=float,
        default=None,
        help="override the recipe's unlearning learning rate",
    )
    parser.add_argument(
        "--base-out",
        type=Path,
        default=None,
        help="also save the trained model before unlearning into this folder (models/tiny-base)",
    )
    parser.add_argument(
        "--fast", action="store_true", help="tiny configuration for tests: seconds, not minutes"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads < 1:
        print(f"--threads must be at least 1, got {args.threads}", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    # Adam's second moments of tiny gradients underflow into denormals, which run many times
    # slower on x86 CPUs; flushing them to zero keeps the run fast (and still deterministic).
    torch.set_flush_denormal(True)
    recipe = FAST if args.fast else FULL
    if args.unlearn_lr is not None:
        recipe = dataclasses.replace(recipe, unlearn_lr=args.unlearn_lr)
    build(recipe, seed=args.seed, out=args.out, base_out=args.base_out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
