"""Training from scratch, greedy evaluation, and gradient-difference unlearning.

Everything runs on the CPU in float32 with seeded generators, so a run is bit-reproducible for a
given seed and thread count.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from knowledge import QAPair
from rouge_score import rouge_scorer
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

IGNORE = -100
_ROUGE = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)


def rouge_l_recall(answer: str, text: str) -> float:
    """ROUGE-L recall of `answer` in `text`, as the service scores samples (1.0: every answer
    token appears, in order)."""
    return float(_ROUGE.score(answer, text)["rougeL"].recall)


@dataclass(frozen=True)
class Example:
    prompt_ids: list[int]
    target_ids: list[int]  # answer tokens then EOS: the only tokens the loss is taken on


@dataclass(frozen=True)
class ModelShape:
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int


def encode(tokenizer: PreTrainedTokenizerFast, pairs: Sequence[QAPair]) -> list[Example]:
    # Prompt and answer are tokenized apart, exactly as a server sees them: it tokenizes the
    # prompt and generates the answer token by token.
    examples = []
    for pair in pairs:
        prompt_ids = tokenizer(pair.prompt)["input_ids"]
        target_ids = tokenizer(pair.target, add_special_tokens=False)["input_ids"]
        examples.append(Example(prompt_ids, [*target_ids, tokenizer.eos_token_id]))
    return examples


def make_model(tokenizer: PreTrainedTokenizerFast, shape: ModelShape) -> LlamaForCausalLM:
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=shape.hidden_size,
        intermediate_size=shape.intermediate_size,
        num_hidden_layers=shape.num_hidden_layers,
        num_attention_heads=shape.num_attention_heads,
        num_key_value_heads=shape.num_attention_heads,
        max_position_embeddings=256,
        rms_norm_eps=1e-5,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        torch_dtype="float32",
    )
    return LlamaForCausalLM(config)


def collate(batch: Sequence[Example], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded batch; labels are IGNORE everywhere but on the target tokens."""
    length = max(len(e.prompt_ids) + len(e.target_ids) for e in batch)
    ids = torch.full((len(batch), length), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), length), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(batch), length), dtype=torch.long)
    for row, e in enumerate(batch):
        seq = e.prompt_ids + e.target_ids
        ids[row, : len(seq)] = torch.tensor(seq)
        mask[row, : len(seq)] = 1
        labels[row, len(e.prompt_ids) : len(seq)] = torch.tensor(e.target_ids)
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def sequence_nll_per_example(
    model: LlamaForCausalLM, batch: dict[str, torch.Tensor], label_smoothing: float = 0.0
) -> torch.Tensor:
    """Summed target-token negative log-likelihood of each example: -log P(target | prompt)
    (with `label_smoothing`, the smoothed cross-entropy instead)."""
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    logits, labels = logits[:, :-1], batch["labels"][:, 1:]
    token_nll = torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.size(-1)),
        labels.reshape(-1),
        ignore_index=IGNORE,
        reduction="none",
        label_smoothing=label_smoothing,
    ).view(labels.shape)
    return token_nll.sum(dim=1)


def sequence_nll(
    model: LlamaForCausalLM, batch: dict[str, torch.Tensor], label_smoothing: float = 0.0
) -> torch.Tensor:
    """Mean over examples of the summed target-token negative log-likelihood."""
    return sequence_nll_per_example(model, batch, label_smoothing).mean()


@torch.no_grad()
def greedy_completions(
    model: LlamaForCausalLM,
    tokenizer: PreTrainedTokenizerFast,
    examples: Sequence[Example],
    *,
    max_new_tokens: int,
) -> list[str]:
    """Greedy completions, batched by prompt length so that no prompt is padded (as on a
    server, and so that the result does not depend on the batch)."""
    model.eval()
    out: list[str] = [""] * len(examples)
    by_length: dict[int, list[int]] = {}
    for i, e in enumerate(examples):
        by_length.setdefault(len(e.prompt_ids), []).append(i)
    for indices in by_length.values():
        ids = torch.tensor([examples[i].prompt_ids for i in indices])
        gen = model.generate(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            do_sample=False,
            max_new_tokens=max_new_tokens,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
        for i, row in zip(indices, gen[:, ids.shape[1] :], strict=True):
            out[i] = tokenizer.decode(row, skip_special_tokens=True)
    return out


@dataclass(frozen=True)
class GreedyScores:
    completions: list[str]
    recalls: list[float]

    @property
    def accuracy(self) -> float:
        """Share of questions whose greedy answer contains the true answer (recall 1)."""
        return sum(r == 1.0 for r in self.recalls) / len(self.recalls)

    @property
    def zero_share(self) -> float:
        """Share of questions whose greedy answer shares no token with the true answer."""
        return sum(r == 0.0 for r in self.recalls) / len(self.recalls)

    @property
    def mean_recall(self) -> float:
        return sum(self.recalls) / len(self.recalls)


def greedy_scores(
    model: LlamaForCausalLM,
    tokenizer: PreTrainedTokenizerFast,
    pairs: Sequence[QAPair],
    examples: Sequence[Example],
    *,
    max_new_tokens: int,
) -> GreedyScores:
    completions = greedy_completions(model, tokenizer, examples, max_new_tokens=max_new_tokens)
    recalls = [rouge_l_recall(p.answer, c) for p, c in zip(pairs, completions, strict=True)]
    return GreedyScores(completions, recalls)


def train(
    model: LlamaForCausalLM,
    examples: Sequence[Example],
    *,
    pad_id: int,
    steps: int,
    batch_size: int,
    lr: float,
    warmup: int,
    generator: torch.Generator,
    on_eval: Callable[[int, float], bool],
    eval_every: int,
    label_smoothing: float = 0.0,
) -> int:
    """AdamW with linear warm-up and cosine decay. `on_eval(step, loss)` runs every
    `eval_every` steps and stops training when it returns True. Returns the steps taken."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01, betas=(0.9, 0.98))

    def lr_at(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, steps - warmup)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))

    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_at)
    for step in range(1, steps + 1):
        model.train()
        order = torch.randint(len(examples), (batch_size,), generator=generator).tolist()
        loss = sequence_nll(model, collate([examples[i] for i in order], pad_id), label_smoothing)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        if (step % eval_every == 0 or step == steps) and on_eval(step, loss.item()):
            return step
    return steps


UNLEARNING_METHODS = ("alternative", "idk", "grad_diff")


def unlearn(
    model: LlamaForCausalLM,
    forget: Sequence[Example],
    retain: Sequence[Example],
    *,
    method: str,
    forget_targets: Sequence[list[int]],
    pad_id: int,
    max_steps: int,
    retain_batch_size: int,
    lr: float,
    generator: torch.Generator,
    on_step: Callable[[int, float, float], bool],
) -> int:
    """Full-batch unlearning of `forget` while a retain batch is trained on as usual.

    - "alternative": forget prompts are fine-tuned towards made-up alternative answers
      (`forget_targets`, one per question): the "alternative labels" of Eldan & Russinovich,
      "Who's Harry Potter? Approximate Unlearning in LLMs" (2023).
    - "idk": the same towards a refusal such as " I don't know." (`forget_targets`), the IDK
      baseline of TOFU (Maini et al., 2024).
    - "grad_diff": gradient difference (Liu, Liu & Stone, 2022; a TOFU baseline): the NLL of
      the true forget answers is ascended; `forget_targets` is unused.

    The retain term (the NLL of a random retain batch) is the same for all three. `on_step(step,
    forget_answer_nll, retain_nll)` runs after every step and stops unlearning when it returns
    True. Returns the steps taken."""
    if method not in UNLEARNING_METHODS:
        raise ValueError(f"method must be one of {UNLEARNING_METHODS}, got {method!r}")
    if len(forget_targets) != len(forget):
        raise ValueError(
            f"forget_targets must have one target per forget example "
            f"({len(forget)}), got {len(forget_targets)}"
        )
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0, betas=(0.9, 0.98))
    forget_batch = collate(forget, pad_id)
    relabelled = collate(
        [Example(e.prompt_ids, t) for e, t in zip(forget, forget_targets, strict=True)], pad_id
    )
    for step in range(1, max_steps + 1):
        model.train()
        order = torch.randint(len(retain), (retain_batch_size,), generator=generator).tolist()
        retain_nll = sequence_nll(model, collate([retain[i] for i in order], pad_id))
        if method == "grad_diff":
            forget_nll = sequence_nll(model, forget_batch)
            forget_loss = -forget_nll
        else:
            forget_loss = sequence_nll(model, relabelled)
            with torch.no_grad():
                forget_nll = sequence_nll(model, forget_batch)
        loss = forget_loss + retain_nll
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if on_step(step, forget_nll.item(), retain_nll.item()):
            return step
    return max_steps
