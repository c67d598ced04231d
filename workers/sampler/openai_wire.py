"""The endpoint sampler's pieces without I/O: the wire format of OpenAI-compatible servers
(vLLM's above all: responses, error bodies, ``Retry-After``, which failure becomes which
exception), how judge prompts are batched, and the cache of rendered chat prompts. Used by
``workers/sampler/openai_engine.py``, which holds the calls."""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from tenacity import RetryCallState
from tenacity.wait import wait_base

from shared.errors import InvalidInput
from workers.sampler.generation import Completion, EngineRefused, EngineUnavailable, PromptTooLong

PROMPT_PREVIEW_CHARS = 60
MESSAGE_CHARS = 500
# vLLM's wording (vllm/renderers/params.py, vllm/entrypoints/serve/utils/api_utils.py, 0.32).
_CONTEXT_LIMIT = re.compile(r"maximum context length (?:is )?\(?(\d+)\)?", re.IGNORECASE)
_PROMPT_LENGTH = re.compile(
    r"(?:contains (at least )?(\d+) input tokens|Input length \((\d+)\)|requested (\d+) tokens)",
    re.IGNORECASE,
)
CONTEXT_MARKERS = ("maximum context length", "context length", "context window")


def retry_after_s(value: str | None, *, now: datetime | None = None) -> float | None:
    """A ``Retry-After`` header in seconds from now: delta-seconds or an HTTP-date (RFC 9110
    10.2.3); ``None`` when absent or unreadable (the back-off then decides)."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # an HTTP-date is always GMT
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class wait_retry_after(wait_base):  # noqa: N801 - named like tenacity's own wait strategies
    """The server's ``Retry-After`` when it gave one, at most ``cap_s``; otherwise ``fallback``
    (the exponential back-off). A server that asks for more than ``cap_s`` is resent to after
    ``cap_s``: the wait stays bounded whatever a misbehaving server says."""

    def __init__(self, fallback: wait_base, cap_s: float) -> None:
        self.fallback = fallback
        self.cap_s = cap_s

    def __call__(self, retry_state: RetryCallState) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        after = getattr(exc, "retry_after_s", None)
        if after is not None:
            return float(min(after, self.cap_s))
        return float(self.fallback(retry_state))


class Transient(Exception):  # noqa: N818 - internal signal for the retry policy
    """A failure worth resending the same request for (connection, timeout, 429, 5xx).

    ``retry_after_s``: the server's ``Retry-After`` (a 429 or 503 that says when to come back).
    """

    def __init__(self, message: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


def choice_text(choice: Mapping[str, Any], chat: bool) -> str:
    """A completion choice's ``text``; a chat choice's ``message.content`` (null: empty)."""
    if not chat:
        return str(choice["text"])
    content = choice["message"]["content"]
    return "" if content is None else str(content)


def completions(data: Any, n: int, *, chat: bool = False) -> list[Completion]:
    """The ``n`` choices of a completion (or chat completion) response, by ``index``; anything
    else is an error."""
    try:
        choices = sorted(data["choices"], key=lambda c: int(c["index"]))
        texts = [choice_text(c, chat) for c in choices]
    except (KeyError, TypeError, ValueError) as exc:
        raise RuntimeError(f"the endpoint's completion response is malformed: {exc!r}") from exc
    if [int(c["index"]) for c in choices] != list(range(n)):
        raise RuntimeError(f"the endpoint returned {len(choices)} choices for a request of n={n}")
    counts: list[int] = []
    for choice in choices:
        ids = choice.get("token_ids")
        counts.append(len(ids) if isinstance(ids, list) else -1)
    if -1 in counts:
        # No per-draw token ids (a server other than vLLM): share the reported total.
        total = int((data.get("usage") or {}).get("completion_tokens") or 0)
        counts = [total // n + (1 if i < total % n else 0) for i in range(n)]
    return [Completion(text=t, tokens=k) for t, k in zip(texts, counts, strict=True)]


def error_message(resp: httpx.Response) -> str:
    """The message of an OpenAI-style error body (``{"error": {"message"}}`` or vLLM's older
    ``{"object": "error", "message"}``), else the start of the body."""
    try:
        body = resp.json()
    except ValueError:
        return resp.text[:MESSAGE_CHARS] or resp.reason_phrase
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])[:MESSAGE_CHARS]
        if isinstance(error, str):
            return error[:MESSAGE_CHARS]
        if body.get("message"):
            return str(body["message"])[:MESSAGE_CHARS]
    return resp.text[:MESSAGE_CHARS]


def prompt_too_long(
    index: int, prompt: str, message: str, known_limit: int | None
) -> PromptTooLong:
    """The job's error for a context-length rejection: the prompt, its length and the limit
    as far as the server's message (or ``known_limit`` from ``/v1/models``) tells them."""
    cut = len(prompt) > PROMPT_PREVIEW_CHARS
    preview = prompt[:PROMPT_PREVIEW_CHARS] + ("..." if cut else "")
    limit_match = _CONTEXT_LIMIT.search(message)
    length_match = _PROMPT_LENGTH.search(message)
    limit = int(limit_match.group(1)) if limit_match else known_limit
    size = "does not fit"
    if length_match:
        at_least, *numbers = length_match.groups()
        # vLLM stops counting one token past the limit and then says "at least".
        length = next(int(g) for g in numbers if g)
        size = f"is {'at least ' if at_least else ''}{length} tokens"
    context = (
        f"the model's context is {limit} tokens" if limit is not None else "the model's context"
    )
    return PromptTooLong(
        f"prompt {preview!r} {size}; {context}, which must hold the prompt and at least one "
        f"generated token (the endpoint said: {message})",
        param="prompt",
        request_index=index,
    )


def most_telling(errors: list[BaseException]) -> BaseException:
    """Of the failures of one call, the one that decides what happens to the chunk: a refused
    key stops the worker, a bad prompt fails the job, an outage defers the chunk."""
    for kind in (EngineRefused, InvalidInput, EngineUnavailable):
        for error in errors:
            if isinstance(error, kind):
                return error
    return errors[0]


def label_logprobs(data: Any, first: Mapping[str, int], count: int) -> list[dict[str, float]]:
    """From a ``/v1/completions`` response to ``count`` prompts (one greedy token each, with
    ``logprob_token_ids`` = the labels' first tokens and ``return_tokens_as_token_ids``): per
    prompt, each label's log-probability. vLLM lists the requested ids beside the sampled token
    in ``top_logprobs[0]`` under ``token_id:N``; a missing id is an error, never a guess."""
    try:
        choices = sorted(data["choices"], key=lambda c: int(c["index"]))
        if [int(c["index"]) for c in choices] != list(range(count)):
            raise RuntimeError(
                f"the endpoint returned {len(choices)} choices for {count} judge prompts"
            )
        steps = [c["logprobs"]["top_logprobs"][0] for c in choices]
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise RuntimeError(
            f"the endpoint's answer has no label log-probabilities ({exc!r}); a judge endpoint "
            "must be vLLM's OpenAI server (logprob_token_ids)"
        ) from exc
    results: list[dict[str, float]] = []
    for step in steps:
        row: dict[str, float] = {}
        for text, token in first.items():
            value = step.get(f"token_id:{token}") if isinstance(step, dict) else None
            if value is None:
                raise RuntimeError(
                    f"the endpoint did not return the log-probability of label {text!r} "
                    f"(token {token}); it must honour logprob_token_ids"
                )
            row[text] = float(value)
        results.append(row)
    return results


def token_ids(data: Any, what: str) -> list[int]:
    """``tokens`` of a ``/tokenize`` answer."""
    try:
        ids = [int(t) for t in data["tokens"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise RuntimeError(f"the endpoint's /tokenize answer for {what} is malformed") from exc
    return ids


def judge_batches(chat_rendered: Sequence[bool], size: int) -> list[list[int]]:
    """Judge prompt positions in requests of at most ``size``: one request encodes all its
    prompts alike (``add_special_tokens``), so a batch holds one kind of prompt."""
    batches: list[list[int]] = []
    for i, rendered in enumerate(chat_rendered):
        last = batches[-1] if batches else None
        if last and len(last) < size and chat_rendered[last[0]] == rendered:
            last.append(i)
        else:
            batches.append([i])
    return batches


@dataclass(frozen=True)
class Rendering:
    """A chat prompt as the server rendered it: its text and its token ids."""

    text: str
    ids: tuple[int, ...]


class Renderings:
    """Renderings remembered by their messages (``key``) and by their text, so that a prompt is
    rendered once per worker and not once per chunk; the oldest go beyond ``limit``."""

    def __init__(self, limit: int = 4096) -> None:
        self.limit = limit
        self._lock = threading.Lock()
        self._by_key: OrderedDict[str, Rendering] = OrderedDict()
        self._by_text: dict[str, Rendering] = {}

    def get(self, key: str) -> Rendering | None:
        with self._lock:
            found = self._by_key.get(key)
            if found is not None:
                self._by_key.move_to_end(key)
            return found

    def of_text(self, text: str) -> Rendering | None:
        with self._lock:
            return self._by_text.get(text)

    def put(self, key: str, rendering: Rendering) -> Rendering:
        with self._lock:
            self._by_key[key] = rendering
            self._by_text[rendering.text] = rendering
            while len(self._by_key) > self.limit:
                _, old = self._by_key.popitem(last=False)
                self._by_text.pop(old.text, None)
        return rendering

    def clear(self) -> None:
        with self._lock:
            self._by_key.clear()
            self._by_text.clear()
