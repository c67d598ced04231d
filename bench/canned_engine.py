"""An engine that answers instantly with canned texts, and a sampler process serving it.

    python -m bench.canned_engine --name canned [--words 32] [--texts 4096]

Only for ``bench/pipeline_ceiling.py``: it measures what the service itself costs per draw, so
the engine must cost nothing. The process is a real sampler (``workers.sampler.main.
serve_engine``: heartbeat, capabilities, RQ ``SimpleWorker`` with the watchdog, the real
``sample_chunk`` task, storage and the scoring hand-off); only ``VllmEngine`` is replaced. It
lives in bench/ and no setting of the service selects it, so no deployment can run it by
accident.

The texts are ``--words`` words each (32 by default, about the length of 32 generated tokens of
English), drawn with a fixed seed from a small vocabulary that includes the reference's words,
so ROUGE-L does real matching work. Built once at start; each call hands out references to
them, cycling, so a call costs a list slice.
"""

from __future__ import annotations

import argparse
import logging
import random
from collections.abc import Sequence

from shared.config import get_settings
from shared.errors import InvalidInput
from shared.schemas import ChatMessage
from workers.sampler.generation import Completion, GenerationRequest, LabelPrompt

REFERENCE = "the old mill"
_VOCAB = [
    "the",
    "old",
    "mill",
    "river",
    "runs",
    "past",
    "stone",
    "bridge",
    "sea",
    "farmers",
    "bring",
    "apples",
    "market",
    "number",
    "and",
    "of",
    "a",
    "to",
    "in",
    "on",
    "under",
    "before",
    "it",
    "reaches",
    "water",
    "green",
    "field",
    "road",
    "town",
    "boat",
    "light",
    "night",
    "morning",
    "cold",
    "warm",
    "small",
    "large",
    "quiet",
    "loud",
    "near",
    "far",
    "north",
    "south",
    "east",
    "west",
    "over",
    "through",
    "again",
]


def canned_texts(count: int, words: int, *, seed: int = 0) -> list[str]:
    """``count`` texts of ``words`` words each, the same for the same arguments."""
    rng = random.Random(seed)
    return [" ".join(rng.choice(_VOCAB) for _ in range(words)) for _ in range(count)]


class CannedEngine:
    """A ``GenerationEngine`` whose ``generate`` returns pre-built completions at once."""

    description = "canned (bench/canned_engine.py, no model)"
    chat_template = False
    judging = False

    def __init__(self, texts: Sequence[str], tokens_per_text: int) -> None:
        pool = [Completion(text=t, tokens=tokens_per_text) for t in texts]
        # Twice over, so any run of up to len(texts) draws is one slice.
        self._pool = pool + pool
        self._size = len(pool)
        self._next = 0

    def generate(self, requests: Sequence[GenerationRequest]) -> list[list[Completion]]:
        out: list[list[Completion]] = []
        for request in requests:
            n = request.n
            if n > self._size:
                raise InvalidInput(f"n={n} exceeds the canned pool of {self._size}", param="n")
            start = self._next
            out.append(self._pool[start : start + n])
            self._next = (start + n) % self._size
        return out

    def render_chat(self, messages: Sequence[ChatMessage]) -> str:
        raise InvalidInput("the canned engine has no chat template", param="messages")

    def label_logprobs(
        self, prompts: Sequence[LabelPrompt], labels: Sequence[str]
    ) -> list[dict[str, float]]:
        raise InvalidInput("the canned engine cannot judge", param="scorer")

    def tokenizer_json(self) -> str | None:
        return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", default="canned", help="model name jobs use")
    parser.add_argument("--words", type=int, default=32, help="words per canned text")
    parser.add_argument("--texts", type=int, default=4096, help="distinct canned texts")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    from workers.sampler.main import serve_engine

    engine = CannedEngine(canned_texts(args.texts, args.words), tokens_per_text=args.words)
    serve_engine(get_settings(), args.name, engine, None, burst=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
