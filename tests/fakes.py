"""Fakes for unit tests only: an engine that needs no model."""

from __future__ import annotations

import random
from collections.abc import Sequence

from workers.sampler.generation import Completion, GenerationRequest, PromptTooLong


class FakeEngine:
    """Draws words from a small vocabulary; greedy returns the first ``max_tokens`` words."""

    description = "fake 0 (test)"
    VOCAB = ["paris", "london", "rome", "the", "capital", "is", "blue", "red"]

    def __init__(self, seed: int = 0, max_prompt_chars: int = 10_000) -> None:
        self.rng = random.Random(seed)
        self.calls: list[list[GenerationRequest]] = []
        self.max_prompt_chars = max_prompt_chars

    def generate(self, requests: Sequence[GenerationRequest]) -> list[list[Completion]]:
        self.calls.append(list(requests))
        for i, r in enumerate(requests):
            if len(r.prompt) > self.max_prompt_chars:
                raise PromptTooLong(f"prompt of {len(r.prompt)} chars is too long", request_index=i)
        out = []
        for r in requests:
            if r.temperature == 0:
                words = self.VOCAB[: min(r.max_tokens, 3)]
                out.append([Completion(" ".join(words), len(words))] * r.n)
            else:
                rng = random.Random(r.seed) if r.seed is not None else self.rng
                draws = []
                for _ in range(r.n):
                    k = rng.randint(1, min(r.max_tokens, 4))
                    words = [rng.choice(self.VOCAB) for _ in range(k)]
                    draws.append(Completion(" ".join(words), k))
                out.append(draws)
        return out
