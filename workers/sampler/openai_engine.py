"""``OpenAIEngine``: a ``GenerationEngine`` that calls an OpenAI-compatible server (vLLM's
``vllm serve`` / ``vllm.entrypoints.openai.api_server``, or a router in front of many of them).

One ``GenerationRequest`` (one prompt's slice of a chunk) is one request with ``n`` and the
slice's seed: ``POST /v1/completions`` for a raw prompt, ``POST /v1/chat/completions`` with the
``messages`` for a chat prompt. A router then keeps the slice on one replica, where the prompt is
prefilled once and its prefix cache serves all ``n`` draws. At most ``concurrency`` requests are
in flight per worker (a thread pool on one ``httpx.Client`` with as many connections).

Chat prompts. The server renders ``messages`` with the model's own chat template. The rendering
that probeval stores (results, samples, the judge's ``{prompt}``) is the server's too:
``POST /tokenize`` with the messages gives the token ids of the rendered prompt and
``POST /detokenize`` their text; every chat response's ``prompt_token_ids`` must equal those ids,
so the stored text is the prompt the draws were sampled from (a mismatch fails the request).
Whether the model has a chat template is probed once at start (``probe``): a ``/tokenize`` of
one message that the server answers means yes; a 4xx (vLLM's answer for a model without a
template, or a router without ``/tokenize``) means no, and the gateway refuses ``messages``.

Judging. ``label_logprobs`` asks ``/v1/completions`` for one greedy token per judge prompt with
vLLM's ``logprob_token_ids`` = the labels' first tokens (from ``/tokenize``): the server returns
their log-probabilities over the whole vocabulary (its default ``logprobs_mode``, raw
log-probabilities, as in the in-process judge), so the score is exact, not a top-k
approximation. Up to ``JUDGE_BATCH`` prompts share one request. ``probe`` registers judging when
the server honours ``logprob_token_ids``.

Failures, and what they become:

* connection errors, timeouts, HTTP 429 and 5xx are retried with capped exponential back-off and
  jitter (``tenacity``), or after the server's ``Retry-After`` where it sends one (seconds or an
  HTTP-date, at most ``retry_after_max_s``), resending the identical body: the same seed, so a
  server that honours seeds regenerates the same draws. When the retries are spent and
  ``/v1/models`` no longer lists the model, the chunk is deferred (``EngineUnavailable``: back on
  its queue, no attempt spent); if the endpoint still lists it, the request itself keeps failing
  and the chunk's attempt counts.
* HTTP 401/403 raise ``EngineRefused``: the chunk goes back and the worker stops.
* HTTP 404 (the endpoint stopped serving the model) is ``EngineUnavailable`` at once.
* a context-length rejection becomes ``PromptTooLong`` naming the prompt, its length and the
  limit; any other 400/422 is ``InvalidInput`` with the server's message (the job fails).

vLLM extras sent with every sampling request: ``top_k`` (0 disables it, as in the job's
sampling) and ``return_token_ids`` (token counts per draw; without them
``usage.completion_tokens`` is split). This module never imports ``vllm``; the response and error
formats are in ``workers/sampler/openai_wire.py``.
"""

from __future__ import annotations

import json
import logging
import threading
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
from shared.scorers.judge import label_first_tokens
from workers.sampler import openai_wire as wire
from workers.sampler.generation import (
    GREEDY_BELOW,
    Completion,
    EngineRefused,
    EngineUnavailable,
    GenerationRequest,
    LabelPrompt,
    PromptTooLong,
)

__all__ = ["JUDGE_BATCH", "EndpointConfig", "OpenAIEngine", "base_url"]

log = logging.getLogger(__name__)

# Judge prompts per /v1/completions request (vLLM accepts up to VLLM_MAX_COMPLETION_PROMPTS,
# 1024 by default): enough to batch the engine's forward passes, small enough that the
# requests of one chunk spread over ``concurrency`` connections.
JUDGE_BATCH = 32
_PROBE_MESSAGES = (ChatMessage(role="user", content="Hello"),)


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
    retry_after_max_s: float = 120.0

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
            retry_after_max_s=settings.endpoint_retry_after_max_s,
        )


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
        # Until ``probe`` finds them: the sampler registers what it found, and the gateway
        # refuses `messages` and a judge on this model when they are absent.
        self.chat_template = False
        self.judging = False
        self._lock = threading.Lock()
        self._renderings = wire.Renderings()
        self._label_tokens: dict[str, list[int]] = {}

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

    def probe(self) -> list[str]:
        """Find out once, at start, whether the endpoint renders chat templates and returns
        label log-probabilities (sets ``chat_template`` and ``judging``); returns why each
        absent one is absent, for the log. ``EngineRefused`` and an endpoint that stops
        answering propagate (the sampler then exits)."""
        missing: list[str] = []
        try:
            self.chat_template = True  # render_chat refuses while it is False
            rendered = self.render_chat(_PROBE_MESSAGES)
            log.info("endpoint renders chat prompts, e.g. %r", rendered)
        except InvalidInput as exc:
            self.chat_template = False
            missing.append(f"no chat prompts (the endpoint's /tokenize refused messages: {exc})")
        try:
            self.judging = True
            self.label_logprobs([LabelPrompt("Hello", False)], ["yes"])
        except (InvalidInput, RuntimeError) as exc:
            self.judging = False
            missing.append(f"no judging (label log-probabilities: {exc})")
        return missing

    # -- generation ---------------------------------------------------------------------------

    def generate(self, requests: Sequence[GenerationRequest]) -> list[list[Completion]]:
        """One HTTP request per generation request, ``concurrency`` at a time, in order.

        Every request is waited for before anything is raised, so no request of this call is
        still running when the chunk is retried or deferred.
        """
        return self._all([self._pool.submit(self._complete, i, r) for i, r in enumerate(requests)])

    def render_chat(self, messages: Sequence[ChatMessage]) -> str:
        """The server's rendering of ``messages`` (its chat template, generation prompt added):
        ``/tokenize`` then ``/detokenize``. ``InvalidInput`` when the server refuses them (no
        chat template, or the template's own checks)."""
        if not self.chat_template:
            raise InvalidInput("the model has no chat template; send 'prompt'", param="messages")
        return self._render(messages).text

    def render_chats(self, chats: Sequence[Sequence[ChatMessage]]) -> list[str]:
        """``render_chat`` of each, ``concurrency`` at a time (the judge renders a chunk's
        prompts this way: workers/sampler/judging.py)."""
        if not self.chat_template:
            raise InvalidInput("the model has no chat template; send 'prompt'", param="messages")
        return [r.text for r in self._all([self._pool.submit(self._render, c) for c in chats])]

    def label_logprobs(
        self, prompts: Sequence[LabelPrompt], labels: Sequence[str]
    ) -> list[dict[str, float]]:
        """For each prompt, the log-probability of each label's first token as the next token,
        over the whole vocabulary (module docstring): ``JUDGE_BATCH`` prompts per request."""
        if not self.judging:
            raise InvalidInput(
                "the endpoint does not return label log-probabilities; serve the judge with "
                "vLLM's OpenAI server or an in-process sampler",
                param="scorer.judge_model",
            )
        if not prompts:
            return []
        first = label_first_tokens(dict.fromkeys(labels, 0.0), self._label_ids)
        batches = wire.judge_batches([p.chat_rendered for p in prompts], JUDGE_BATCH)
        futures = [self._pool.submit(self._judge, prompts, batch, first) for batch in batches]
        return [row for rows in self._all(futures) for row in rows]

    def tokenizer_json(self) -> str | None:
        # The server does not hand out its tokenizer.json: the gateway then leaves the check of
        # judge labels to the judge itself (the same rule, at the first chunk).
        return None

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._client.close()

    # -- requests -----------------------------------------------------------------------------

    @staticmethod
    def _all(futures: Sequence[Future[Any]]) -> list[Any]:
        errors: list[BaseException] = []
        results: list[Any] = []
        for future in futures:
            try:
                results.append(future.result())
            except Exception as exc:
                errors.append(exc)
        if errors:
            raise wire.most_telling(errors)
        return results

    def _complete(self, index: int, request: GenerationRequest) -> list[Completion]:
        greedy = request.temperature < GREEDY_BELOW
        chat = request.messages is not None
        body: dict[str, Any] = {"model": self.config.served_model}
        if request.messages is not None:
            body["messages"] = [m.model_dump() for m in request.messages]
        else:
            body["prompt"] = request.prompt
        body.update(
            # Greedy draws are all the argmax continuation: one is asked for, n are returned.
            n=1 if greedy else request.n,
            temperature=request.temperature,
            top_p=request.top_p,
            top_k=request.top_k,
            max_tokens=request.max_tokens,
            return_token_ids=True,
        )
        if request.seed is not None:
            body["seed"] = request.seed
        path = "/v1/chat/completions" if chat else "/v1/completions"
        data = self._call(path, body, index, request.prompt)
        if request.messages is not None:
            self._check_rendering(request.prompt, data)
        completions = wire.completions(data, 1 if greedy else request.n, chat=chat)
        return completions * request.n if greedy else completions

    def _render(self, messages: Sequence[ChatMessage]) -> wire.Rendering:
        listed = [m.model_dump() for m in messages]
        key = json.dumps(listed, sort_keys=True)
        cached = self._renderings.get(key)
        if cached is not None:
            return cached
        body = {"model": self.config.served_model, "messages": listed}
        tokens = self._call("/tokenize", {**body, "add_generation_prompt": True}, 0, "", "messages")
        ids = wire.token_ids(tokens, "the chat messages")
        text = self._call(
            "/detokenize", {"model": self.config.served_model, "tokens": ids}, 0, ""
        ).get("prompt")
        if not isinstance(text, str):
            raise RuntimeError("the endpoint's /detokenize answer has no prompt text")
        return self._renderings.put(key, wire.Rendering(text, tuple(ids)))

    def _check_rendering(self, prompt: str, data: Any) -> None:
        """The chat response's prompt must be the rendering stored for it (module docstring)."""
        ids = data.get("prompt_token_ids") if isinstance(data, dict) else None
        if not isinstance(ids, list):
            return  # a server that does not return them (not vLLM): nothing to compare
        known = self._renderings.of_text(prompt)
        if known is not None and tuple(ids) == known.ids:
            return
        self._renderings.clear()  # rendered again on the next attempt
        raise RuntimeError(
            "the endpoint sampled a chat prompt that differs from the rendering probeval stored "
            f"for it ({len(ids)} prompt tokens; the chat template changed?)"
        )

    def _label_ids(self, text: str) -> list[int]:
        with self._lock:
            cached = self._label_tokens.get(text)
        if cached is not None:
            return cached
        body = {"model": self.config.served_model, "prompt": text, "add_special_tokens": False}
        ids = wire.token_ids(self._call("/tokenize", body, 0, text), f"label {text!r}")
        with self._lock:
            self._label_tokens[text] = ids
        return ids

    def _judge(
        self, prompts: Sequence[LabelPrompt], batch: list[int], first: dict[str, int]
    ) -> list[dict[str, float]]:
        ids = list(first.values())
        body = {
            "model": self.config.served_model,
            "prompt": [prompts[i].text for i in batch],
            # A rendered chat prompt already carries the template's special tokens.
            "add_special_tokens": not prompts[batch[0]].chat_rendered,
            "n": 1,
            "temperature": 0.0,
            "max_tokens": 1,
            "logprobs": len(ids),
            "logprob_token_ids": ids,
            "return_tokens_as_token_ids": True,
        }
        try:
            data = self._call("/v1/completions", body, batch[0], prompts[batch[0]].text)
        except PromptTooLong:
            if len(batch) == 1:
                raise
            # The server does not say which prompt of the batch is too long: ask one by one.
            return [row for i in batch for row in self._judge(prompts, [i], first)]
        return wire.label_logprobs(data, first, len(batch))

    def _call(
        self, path: str, body: dict[str, Any], index: int, prompt: str, param: str | None = None
    ) -> Any:
        """POST ``body`` with the retry policy (module docstring); the JSON answer."""
        attempts = self.config.retries + 1
        retrying = Retrying(
            retry=retry_if_exception_type(wire.Transient),
            stop=stop_after_attempt(attempts),
            wait=wire.wait_retry_after(
                wait_exponential_jitter(multiplier=0.5, max=self.config.backoff_max_s),
                self.config.retry_after_max_s,
            ),
            before_sleep=self._log_retry,
            reraise=True,
        )
        try:
            return retrying(self._post, path, body, index, prompt, param)
        except wire.Transient as exc:
            reason = self.check()
            if reason is not None:
                raise EngineUnavailable(f"{exc}; {reason}") from exc
            raise RuntimeError(
                f"endpoint {self.base} failed {attempts} times on request {index} ({path}): {exc}"
            ) from exc

    def _post(
        self, path: str, body: dict[str, Any], index: int, prompt: str, param: str | None
    ) -> Any:
        try:
            resp = self._client.post(path, json=body)
        except httpx.TransportError as exc:
            raise wire.Transient(f"{type(exc).__name__}: {exc}") from exc
        status = resp.status_code
        if status == 200:
            try:
                return resp.json()
            except ValueError as exc:
                raise wire.Transient(
                    "the endpoint answered HTTP 200 with a body that is not JSON"
                ) from exc
        message = wire.error_message(resp)
        if status == 429 or status >= 500:
            after = wire.retry_after_s(resp.headers.get("retry-after"))
            raise wire.Transient(f"HTTP {status}: {message}", retry_after_s=after)
        if status in (401, 403):
            raise EngineRefused(self._refusal(resp))
        if status == 404 and path.startswith("/v1/"):
            raise EngineUnavailable(f"endpoint {self.base} answered HTTP 404: {message}")
        if status in (400, 413, 422) and any(m in message.lower() for m in wire.CONTEXT_MARKERS):
            raise wire.prompt_too_long(index, prompt, message, self.max_model_len)
        if 400 <= status < 500:
            raise InvalidInput(
                f"the endpoint rejected request {index} ({path}): {message}", param=param
            )
        raise RuntimeError(f"endpoint {self.base} answered HTTP {status}: {message}")

    def _refusal(self, resp: httpx.Response) -> str:
        return (
            f"endpoint {self.base} refused this worker's credentials (HTTP {resp.status_code}: "
            f"{wire.error_message(resp)}); set the API key variable (--api-key-env) and restart"
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
