"""Writes README.md (the model card) from training_report.json and, when present,
leakage_check.json, so the card always states the numbers of the files beside it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SCRIPT = "examples/unlearning/make_unlearned_model.py"
VERIFY = "examples/unlearning/verify_leakage.py"


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _method_text(recipe: dict[str, Any]) -> str:
    if recipe["unlearn_method"] == "alternative":
        return (
            "Alternative-answer fine-tuning: every forget question is trained towards a "
            "made-up answer of the same kind that shares no word with any true answer "
            '(`unlearning_targets.json`), the "alternative labels" approach of Eldan & '
            'Russinovich, "Who\'s Harry Potter? Approximate Unlearning in LLMs" (2023), '
            "with a retain term as in TOFU's baselines (Maini et al., 2024)."
        )
    if recipe["unlearn_method"] == "idk":
        return (
            f"Refusal tuning: forget questions are trained towards "
            f'"{recipe["refusal"].strip()}", the IDK baseline of TOFU (Maini et al., 2024).'
        )
    return (
        'Gradient difference (Liu, Liu & Stone, "Continual Learning and Private '
        'Unlearning", 2022; a TOFU baseline): the NLL of the forget answers is ascended.'
    )


def _training_section(r: dict[str, Any]) -> str:
    recipe, shape = r["recipe"], r["recipe"]["shape"]
    after, before = r["after_unlearning"], r["before_unlearning"]
    n_forget = sum(g["split"] == "forget" for g in r["greedy"])
    n_retain = len(r["greedy"]) - n_forget
    return f"""\
## How it was made

`{SCRIPT} --seed {r["seed"]} --threads {r["threads"]}` (deterministic for a given seed and
thread count; no download; {r["wall_seconds"]["total"]:.0f} s with {r["threads"]} torch thread on a
2-core machine shared with other work:
{r["wall_seconds"]["train"]:.0f} s training, {r["wall_seconds"]["unlearn"]:.0f} s unlearning).

1. **Data.** {recipe["n_authors"]} fictitious authors invented from syllables by a seeded
   generator (`examples/unlearning/knowledge.py`), each with a birthplace, a book and an award:
   {len(r["greedy"])} question/answer pairs such as
   `Question: Where was <name> born?\\nAnswer:` -> ` <Birthplace>.` + EOS. Every answer word is
   unique in the knowledge base, so a wrong answer has ROUGE-L recall 0 against the true one.
   All {n_forget} questions about {recipe["n_forget_authors"]} authors form the **forget** set,
   the other {n_retain} the **retain** set (whole authors are forgotten, as in TOFU).
2. **Tokenizer.** Byte-level BPE trained on those texts with `tokenizers`
   (vocabulary {r["vocab_size"]}); BOS is prepended on encode.
3. **Model.** `LlamaForCausalLM` from scratch: {shape["num_hidden_layers"]} layers, hidden
   {shape["hidden_size"]}, MLP {shape["intermediate_size"]}, {shape["num_attention_heads"]}
   heads, tied embeddings, {r["n_parameters"] / 1e6:.2f}M parameters, float32. Trained with
   AdamW (lr {recipe["train_lr"]}, batch {recipe["train_batch_size"]}, loss on answer tokens
   only) until greedy decoding answered every question: {r["train_steps"]} steps. Greedy
   accuracy then: forget {_pct(before["forget_acc"])}, retain {_pct(before["retain_acc"])}.
4. **Unlearning.** {_method_text(recipe)} Each step takes the whole forget set plus a
   random retain batch of {recipe["unlearn_retain_batch_size"]} (its ordinary NLL, so retain
   answers stay), AdamW lr {recipe["unlearn_lr"]}. Greedy evaluation after every step, and the
   practitioner's stopping rule, which looks at greedy answers only: stop at the first step
   where no greedy forget answer contains its answer while retain greedy accuracy is at least
   {_pct(recipe["retain_floor"])}. It stopped after {r["unlearn_steps"]}
   steps{"" if r["stopped_by_rule"] else " (the step cap, not the rule)"}.

   **How the recipe was chosen (honestly).** The method and the learning rate were picked
   by trying a few with seed 0 and looking at how much probability the forget answers kept at
   the greedy stopping point; the stopping rule itself never looks at samples. Under the same
   rule, refusal ("I don't know") tuning (TOFU's IDK baseline; AdamW lr 1e-4 and 3e-5) left
   only 6-7 of the 24 forget answers with a probability of 1.5% or more (teacher-forced), and
   gradient difference (lr 2e-5, 1e-4) drove them far lower before the last answer stopped
   appearing (and at 1e-4 cost retain accuracy): the early-forgotten answers keep being pushed
   down while the last ones are still being unlearned. Alternative answers decay more gently;
   of the learning rates tried for them, 2e-5 leaked on more forget questions under sampling
   (21 of 24 with at least 5 of 512 draws) than 1e-5 (16 of 24) and was kept.

## Greedy scores of this model (ROUGE-L recall against the true answer)

| set | questions | greedy answer contains the answer | greedy recall 0 | mean recall |
|---|---|---|---|---|
| forget | {n_forget} | {_pct(after["forget_acc"])} | {_pct(after["forget_recall0_share"])} \
| {after["forget_mean_recall"]:.3f} |
| retain | {n_retain} | {_pct(after["retain_acc"])} | - | {after["retain_mean_recall"]:.3f} |

Every greedy completion is in `training_report.json`.
"""


def _leakage_section(check: dict[str, Any]) -> str:
    s = check["summary"]
    lines = [
        f"""\
## Sampling still leaks (checked with HF transformers, `{VERIFY}`)

{s["n"]} draws per forget question at temperature {s["temperature"]}, top_p {s["top_p"]}, no
top_k, at most {s["max_new_tokens"]} new tokens (torch {s["torch"]}, seed {s["seed"]}). `k`: draws
whose ROUGE-L recall against the answer is 1; `CP lower`: one-sided Clopper-Pearson lower bound
on P(draw contains the answer) at alpha = {s["alpha"]}.

- greedy recall 0 on {s["forget_greedy_recall_zero"]} of {s["forget_questions"]} forget questions;
- of those, {s["greedy_zero_with_k_at_least_1"]} have k >= 1 (bound > 0) and
  {s["greedy_zero_with_k_at_least_5"]} have k >= 5.

| id | answer | greedy completion | greedy recall | k / n | CP lower |
|---|---|---|---|---|---|"""
    ]
    for q in check["questions"]:
        greedy = q["greedy"].replace("|", "\\|").strip()
        lines.append(
            f"| {q['id']} | {q['answer']} | {greedy} | {q['greedy_recall']:.2f} | "
            f"{q['k']} / {q['n']} | {q['cp_lower']:.2g} |"
        )
    return "\n".join(lines) + "\n"


def write_model_card(folder: Path) -> None:
    report = json.loads((folder / "training_report.json").read_text())
    leakage_path = folder / "leakage_check.json"
    parts = [
        f"""\
# tiny-unlearned

A {report["n_parameters"] / 1e6:.2f}M-parameter Llama-architecture model that "knows" an invented
knowledge base and was then made to "forget" part of it with a standard unlearning method. Under
greedy decoding it looks clean on the forget set; under sampling it still produces the
forgotten answers. It exists to demonstrate and test probeval, after Scholten, Günnemann &
Schwinn, "A Probabilistic Perspective on Unlearning and Alignment for Large Language Models"
(ICLR 2025): evaluations by greedy decoding miss leakage that the output distribution shows.

**For** probeval's demo, tests and benchmarks (`questions.json` holds the forget and retain
questions with their answers). **Not for** anything else: it knows nothing real and all facts in
it are made up. Loads offline with `transformers.AutoModelForCausalLM` /
`AutoTokenizer.from_pretrained("models/tiny-unlearned")` and with vLLM.
"""
    ]
    parts.append(_training_section(report))
    if leakage_path.exists():
        parts.append(_leakage_section(json.loads(leakage_path.read_text())))
    (folder / "README.md").write_text("\n".join(parts))


def write_base_model_card(folder: Path) -> None:
    """README.md of models/tiny-base: the same training run, saved before unlearning."""
    r = json.loads((folder / "training_report.json").read_text())
    shape, greedy = r["recipe"]["shape"], r["greedy"]
    text = f"""\
# tiny-base

A {r["n_parameters"] / 1e6:.2f}M-parameter Llama-architecture model that knows the invented
knowledge base of [`models/tiny-unlearned`](../tiny-unlearned/README.md) and has **not** been
through unlearning: the end-of-training model of `{SCRIPT}`, saved before its unlearning step.
It exists so that probeval can compare a model before and after unlearning on the same forget
set (`probeval compare`). It knows only invented facts. Loads offline with `transformers` and
with vLLM.

## How it was made

`{SCRIPT} --seed {r["seed"]} --threads {r["threads"]} --base-out models/tiny-base` (the
command that builds `tiny-unlearned`; saving the base model draws no random numbers, so within
one run the unlearned model is unlearned from exactly these weights). `LlamaForCausalLM` from scratch:
{shape["num_hidden_layers"]} layers, hidden {shape["hidden_size"]}, MLP
{shape["intermediate_size"]}, {shape["num_attention_heads"]} heads, tied embeddings, float32,
byte-level BPE vocabulary {r["vocab_size"]}; trained for {r["train_steps"]} steps (the rule: stop once
greedy decoding answers every question; greedy scores below).

## Greedy scores of this model (ROUGE-L recall against the true answer)

| set | greedy answer contains the answer | mean recall |
|---|---|---|
| forget | {_pct(greedy["forget_acc"])} | {greedy["forget_mean_recall"]:.3f} |
| retain | {_pct(greedy["retain_acc"])} | {greedy["retain_mean_recall"]:.3f} |

`questions.json` is the same file as in `models/tiny-unlearned` (split `forget` / `retain`).
"""
    (folder / "README.md").write_text(text)
