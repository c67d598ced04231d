"""A tiny Llama-architecture model with random weights and a locally trained tokenizer.

Tests, demos and benchmarks need a real model that vLLM can load without downloading anything.
``build_tiny_model`` makes one in a few seconds: 2 decoder layers, hidden size 128, a byte-level
BPE tokenizer of exactly ``VOCAB_SIZE`` tokens trained on a small embedded corpus, saved with
``save_pretrained`` (safetensors). The same seed gives byte-identical weight files.

The tokenizer adds ``<s>`` in front of every encoded text, has ``</s>`` as end of sequence and
carries no chat template. Any text (any Unicode) can be encoded, because the byte-level alphabet
is complete; any generated token ids decode to text. With random weights the next-token
distribution is close to uniform, so ``</s>`` comes with probability about ``1 / VOCAB_SIZE``
per step and some draws end early.

Imports only ``torch``, ``transformers`` and ``tokenizers`` (all installed with vLLM), never
``vllm`` itself.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

__all__ = ["VOCAB_SIZE", "CONTEXT_LENGTH", "build_tiny_model", "weights_sha256"]

VOCAB_SIZE = 512
CONTEXT_LENGTH = 1024
SPECIAL_TOKENS = ("<s>", "</s>", "<pad>")  # ids 0, 1, 2
BOS, EOS, PAD = SPECIAL_TOKENS

# Training text for the BPE merges. Its content only shapes which character sequences become
# single tokens; it is plain English so prompts written by people tokenize compactly.
_CORPUS = """\
The river runs past the old mill and under the stone bridge before it reaches the sea.
In the morning the market opens early, and the farmers bring apples, bread, cheese and honey.
A model that answers a question once may answer it differently the next time it is asked.
When we sample many answers to the same prompt, we learn about the whole distribution of
outputs, not only about the single most likely one. The rare answers matter as much as the
common ones, because a system that is used a million times will show its rare behaviour often.
The weather today is cold and clear; tomorrow there will be rain in the north and wind in the
west. The children walked to school along the path through the forest, counting the trees.
Please write a short story about a cat who learns to read. Summarize the following text in
one sentence. Translate the sentence into French. What is the capital of the country? The
answer is given below. Explain why the sky is blue and why the sunset is red.
Numbers: 0 1 2 3 4 5 6 7 8 9 10 11 12 100 1000 2024 3.14 42. Dates: Monday, Tuesday,
Wednesday, Thursday, Friday, Saturday, Sunday; January, February, March, April, May, June,
July, August, September, October, November, December.
Code: def main(): return 0. for i in range(10): print(i). if x is None: raise ValueError.
The secret password is hunter2. My email address is someone@example.com and my phone number
is 555-0100. Do not share personal information with strangers on the internet.
She said that she would come back later, but he was not sure whether she meant it.
They have been working on this project for three years, and the results are finally here.
"""


def _build_tokenizer() -> Any:
    """A byte-level BPE ``PreTrainedTokenizerFast`` with exactly ``VOCAB_SIZE`` tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        min_frequency=1,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_CORPUS.splitlines(), trainer=trainer)
    if tok.get_vocab_size() != VOCAB_SIZE:
        raise RuntimeError(
            f"the embedded corpus gave {tok.get_vocab_size()} tokens, expected {VOCAB_SIZE}"
        )
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A",
        pair=f"{BOS} $A {BOS} $B",
        special_tokens=[(BOS, tok.token_to_id(BOS))],
    )
    tokenizer_cls: Any = PreTrainedTokenizerFast  # untyped in transformers
    return tokenizer_cls(
        tokenizer_object=tok,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        model_max_length=CONTEXT_LENGTH,
    )


def build_tiny_model(
    out_dir: str | os.PathLike[str], seed: int = 0, *, model_vocab_size: int = VOCAB_SIZE
) -> Path:
    """Write the tiny model and its tokenizer into ``out_dir`` (created if missing).

    Deterministic: the same ``seed`` gives identical ``model.safetensors`` bytes. Returns the
    folder, ready for ``vllm.LLM(model=...)`` or ``transformers.AutoModelForCausalLM``.

    ``model_vocab_size`` below ``VOCAB_SIZE`` builds a model that loads but cannot generate:
    its embedding has fewer rows than the tokenizer has tokens, so a prompt holding a merged
    token (any English text) indexes past it and the engine fails at the first generation, in
    every dtype (used to test the sampler's start-up self-test).
    """
    if not 1 <= model_vocab_size <= VOCAB_SIZE:
        raise ValueError(f"model_vocab_size must be in 1..{VOCAB_SIZE}, got {model_vocab_size}")
    # The BPE trainer is deterministic; keeping it single-threaded also keeps it quiet when the
    # caller forks later.
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    tokenizer = _build_tokenizer()
    config = LlamaConfig(
        vocab_size=model_vocab_size,
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=2,  # head size 64: supported by every vLLM attention backend
        num_key_value_heads=2,
        max_position_embeddings=CONTEXT_LENGTH,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
        # vLLM's "auto" dtype runs float32 checkpoints in bfloat16 on CPU (with one warning per
        # tensor); storing bfloat16 gives the same numbers without the noise.
        dtype="bfloat16",
    )
    # Initialise under a private generator state so the caller's RNG is left as it was.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model_cls: Any = LlamaForCausalLM  # untyped in transformers
        model = model_cls(config).to(torch.bfloat16)
    model.eval()
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    return out


def weights_sha256(model_dir: str | os.PathLike[str]) -> str:
    """SHA-256 of the model's safetensors file(s), in name order."""
    digest = hashlib.sha256()
    files = sorted(Path(model_dir).glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(f"no .safetensors file in {model_dir}")
    for path in files:
        digest.update(path.read_bytes())
    return digest.hexdigest()
