"""``OpenAIEngine``: a ``GenerationEngine`` that calls an OpenAI-compatible server (vLLM's
``vllm serve`` / ``vllm.entrypoints.openai.api_server``, or a router in front of many of them).

One ``GenerationRequest`` (one prompt's slice of a chunk) is one ``POST /v1/completions`` with
``n`` and the slice's seed: a router then keeps the slice on one replica, where the prompt is
prefilled once and its prefix cache serves all ``n`` draws. At most ``concurrency`` requests are
in flight per worker (a thread pool on one ``httpx.Client`` with as many connections).

Failures, and what they become:

* connection errors, timeouts, HTTP 429 and 5xx are retried with capped exponential back-off and
  jitter (``tenacity``), resending the identical body: the same seed, so a server that honours
  seeds regenerates the same draws. When the retries are spent and ``/v1/models`` no longer lists
  the model, the chunk is deferred (``EngineUnavailable``: back on its queue, no attempt spent);
  if the endpoint still lists it, the request itself keeps failing and the chunk's attempt counts.
* HTTP 401/403 raise ``EngineRefused``: the chunk goes back and the worker stops.
* HTTP 404 (the endpoint stopped serving the model) is ``EngineUnavailable`` at once.
* a context-length rejection becomes ``PromptTooLong`` naming the prompt, its length and the
  limit; any other 400/422 is ``InvalidInput`` with the server's message (the job fails).

vLLM extras sent with every request: ``top_k`` (0 disables it, as in the job's sampling) and
``return_token_ids`` (token counts per draw; without them ``usage.completion_tokens`` is split).
This module never imports ``vllm``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import SecretStr
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from shared.config import Settings
from shared.errors import InvalidInput
from shared.schemas import ChatMessage
from workers.sampler.generation import (
    GREEDY_BELOW,
    Completion,
    EngineRefused,
    EngineUnavailable,
    GenerationRequest,
    LabelPrompt,
    PromptTooLong,
)

__all__ = ["EndpointConfig", "OpenAIEngine"]

log = logging.getLogger(__name__)

_PROMPT_PREVIEW_CHARS = 60
_MESSAGE_CHARS = 500
# vLLM's wording (vllm/renderers/params.py, vllm/entrypoints/serve/utils/api_utils.py, 0.32).
_CONTEXT_LIMIT = re.compile(r"maximum context length (?:is )?\(?(\d+)\)?", re.IGNORECASE)
_PROMPT_LENGTH = re.compile(
    r"(?:contains (at least )?(\d+) input tokens|Input length \((\d+)\)|requested (\d+) tokens)",
    re.IGNORECASE,
)
_CONTEXT_MARKERS = ("maximum context length", "context length", "context window")


@dataclass(frozen=True)
class EndpointConfig:
    """Where and how to call the endpoint; built from ``Settings`` at the CLI edge."""

    url: str
    """Base address, e.g. ``http://vllm-router:8000`` (a trailing ``/v1`` is accepted)."""
    served_model: str
    """The model name the endpoint serves (``/v1/models``), sent as ``model``."""
    api_key: SecretStr | None = None
    concurrency: int = 8
    timeout_s: float = 600.0
    connect_timeout_s: float = 5.0
    retries: int = 4
    backoff_max_s: float = 30.0

    @classmethod
    def from_settings(
        cls, settings: Settings, *, url: str, served_model: str, api_key: SecretStr | None
    ) -> EndpointConfig:
        return cls(
            url=url,
            served_model=served_model,
            api_key=api_key,
            concurrency=settings.endpoint_concurrency,
            timeout_s=settings.endpoint_timeout_s,
            connect_timeout_s=settings.endpoint_connect_timeout_s,
            retries=settings.endpoint_retries,
            backoff_max_s=settings.endpoint_backoff_max_s,
        )


class _Transient(Exception):  # noqa: N818 - internal signal for the retry policy
    """A failure worth resending the same request for (connection, timeout, 429, 5xx)."""


def base_url(url: str) -> str:
    """``http://host:8000/v1/`` -> ``http://host:8000``: routes below are spelled with /v1."""
    url = url.rstrip("/")
    return url[: -len("/v1")] if url.endswith("/v1") else url


class OpenAIEngine:
    """A ``GenerationEngine`` backed by an OpenAI-compatible HTTP endpoint."""

    def __init__(self, config: EndpointConfig, *, transport: httpx.BaseTransport | None = None):
        self.config = config
        self.base = base_url(config.url)
        key = config.api_key.get_secret_value() if config.api_key else ""
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._client = httpx.Client(
            base_url=self.base,
            headers=headers,
            timeout=httpx.Timeout(config.timeout_s, connect=config.connect_timeout_s),
            limits=httpx.Limits(
                max_connections=config.concurrency, max_keepalive_connections=config.concurrency
            ),
            transport=transport,
        )
        self._pool = ThreadPoolExecutor(config.concurrency, thread_name_prefix="probeval-http")
        self.max_model_len: int | None = None
        self.description = f"openai-compatible {self.base} ({config.served_model})"
        # Not yet over HTTP: chat rendering (the exact rendered text must be stored) and judge
        # label log-probabilities. The sampler registers both as absent, so the gateway refuses
        # `messages` and a judge on this model at submit.
        self.chat_template = False
        self.judging = False

    # -- health -------------------------------------------------------------------------------

    def check(self) -> str | None:
        """``None`` when ``/v1/models`` answers and lists the served model, else why not.

        Raises ``EngineRefused`` when the endpoint rejects the API key.
        """
        try:
            resp = self._client.get("/v1/models", timeout=self.config.connect_timeout_s + 5)
        except httpx.TransportError as exc:
            return f"endpoint {self.base} does not answer ({type(exc).__name__}: {exc})"
        if resp.status_code in (401, 403):
            raise EngineRefused(self._refusal(resp))
        if resp.status_code != 200:
            return f"endpoint {self.base}/v1/models answered HTTP {resp.status_code}"
        try:
            models = [m for m in resp.json()["data"] if isinstance(m, dict)]
        except (ValueError, KeyError, TypeError):
            return f"endpoint {self.base}/v1/models did not answer a model list"
        for model in models:
            if model.get("id") == self.config.served_model:
                limit = model.get("max_model_len")
                if isinstance(limit, int):
                    self.max_model_len = limit
                return None
        served = sorted(str(m.get("id")) for m in models)
        return f"endpoint {self.base} serves {served}, not {self.config.served_model!r}"

    # -- generation ---------------------------------------------------------------------------

    def generate(self, requests: Sequence[GenerationRequest]) -> list[list[Completion]]:
        """One HTTP request per generation request, ``concurrency`` at a time, in order.

        Every request is waited for before anything is raised, so no request of this call is
        still running when the chunk is retried or deferred.
        """
        futures: list[Future[list[Completion]]] = [
            self._pool.submit(self._complete, index, request)
            for index, request in enumerate(requests)
        ]
        errors: list[BaseException] = []
        results: list[list[Completion]] = []
        for future in futures:
            try:
                results.append(future.result())
            except Exception as exc:
                errors.append(exc)
        if errors:
            raise _most_telling(errors)
        return results

    def render_chat(self, messages: Sequence[ChatMessage]) -> str:
        raise InvalidInput(
            "an endpoint sampler does not render chat templates; send 'prompt'", param="messages"
        )

    def label_logprobs(
        self, prompts: Sequence[LabelPrompt], labels: Sequence[str]
    ) -> list[dict[str, float]]:
        raise InvalidInput(
            "an endpoint sampler cannot judge; serve the judge model in process",
            param="scorer.judge_model",
        )

    def tokenizer_json(self) -> str | None:
        return None

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._client.close()

    def _complete(self, index: int, request: GenerationRequest) -> list[Completion]:
        greedy = request.temperature < GREEDY_BELOW
        body: dict[str, Any] = {
            "model": self.config.served_model,
            "prompt": request.prompt,
            # Greedy draws are all the argmax continuation: one is asked for, n are returned.
            "n": 1 if greedy else request.n,
            "temperature": request.temperature,
            "top_p": request.top_p,
            "top_k": request.top_k,
            "max_tokens": request.max_tokens,
            "return_token_ids": True,
        }
        if request.seed is not None:
            body["seed"] = request.seed
        attempts = self.config.retries + 1
        retrying = Retrying(
            retry=retry_if_exception_type(_Transient),
            stop=stop_after_attempt(attempts),
            wait=wait_exponential_jitter(multiplier=0.5, max=self.config.backoff_max_s),
            before_sleep=self._log_retry,
            reraise=True,
        )
        try:
            data = retrying(self._post, index, request, body)
        except _Transient as exc:
            reason = self.check()
            if reason is not None:
                raise EngineUnavailable(f"{exc}; {reason}") from exc
            raise RuntimeError(
                f"endpoint {self.base} failed {attempts} times on request {index}: {exc}"
            ) from exc
        completions = _completions(data, 1 if greedy else request.n)
        return completions * request.n if greedy else completions

    def _post(self, index: int, request: GenerationRequest, body: dict[str, Any]) -> Any:
        try:
            resp = self._client.post("/v1/completions", json=body)
        except httpx.TransportError as exc:
            raise _Transient(f"{type(exc).__name__}: {exc}") from exc
        status = resp.status_code
        if status == 200:
            try:
                return resp.json()
            except ValueError as exc:
                raise _Transient(
                    "the endpoint answered HTTP 200 with a body that is not JSON"
                ) from exc
        message = _error_message(resp)
        if status == 429 or status >= 500:
            raise _Transient(f"HTTP {status}: {message}")
        if status in (401, 403):
            raise EngineRefused(self._refusal(resp))
        if status == 404:
            raise EngineUnavailable(f"endpoint {self.base} answered HTTP 404: {message}")
        if status in (400, 413, 422):
            if any(marker in message.lower() for marker in _CONTEXT_MARKERS):
                raise _prompt_too_long(index, request.prompt, message, self.max_model_len)
            raise InvalidInput(f"the endpoint rejected request {index}: {message}")
        raise RuntimeError(f"endpoint {self.base} answered HTTP {status}: {message}")

    def _refusal(self, resp: httpx.Response) -> str:
        return (
            f"endpoint {self.base} refused this worker's credentials (HTTP {resp.status_code}: "
            f"{_error_message(resp)}); set the API key variable (--api-key-env) and restart"
        )

    def _log_retry(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        sleep = state.next_action.sleep if state.next_action else 0.0
        log.warning(
            "request to %s failed (attempt %d: %s); resending in %.1f s",
            self.base,
            state.attempt_number,
            exc,
            sleep,
        )


def _completions(data: Any, n: int) -> list[Completion]:
    """The ``n`` choices of a completion response, by ``index``; anything else is an error."""
    try:
        choices = sorted(data["choices"], key=lambda c: int(c["index"]))
        texts = [str(c["text"]) for c in choices]
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


def _error_message(resp: httpx.Response) -> str:
    """The message of an OpenAI-style error body (``{"error": {"message"}}`` or vLLM's older
    ``{"object": "error", "message"}``), else the start of the body."""
    try:
        body = resp.json()
    except ValueError:
        return resp.text[:_MESSAGE_CHARS] or resp.reason_phrase
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])[:_MESSAGE_CHARS]
        if isinstance(error, str):
            return error[:_MESSAGE_CHARS]
        if body.get("message"):
            return str(body["message"])[:_MESSAGE_CHARS]
    return resp.text[:_MESSAGE_CHARS]


def _prompt_too_long(
    index: int, prompt: str, message: str, known_limit: int | None
) -> PromptTooLong:
    cut = len(prompt) > _PROMPT_PREVIEW_CHARS
    preview = prompt[:_PROMPT_PREVIEW_CHARS] + ("..." if cut else "")
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


def _most_telling(errors: list[BaseException]) -> BaseException:
    """Of the failures of one call, the one that decides what happens to the chunk: a refused
    key stops the worker, a bad prompt fails the job, an outage defers the chunk."""
    for kind in (EngineRefused, InvalidInput, EngineUnavailable):
        for error in errors:
            if isinstance(error, kind):
                return error
    return errors[0]
