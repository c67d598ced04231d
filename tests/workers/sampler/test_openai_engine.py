"""OpenAIEngine against a fake server (httpx.MockTransport): request bodies, response parsing,
retries, and which failure becomes which exception. The real server is in tests/e2e."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from shared.errors import InvalidInput
from workers.sampler.generation import (
    EngineRefused,
    EngineUnavailable,
    GenerationEngine,
    GenerationRequest,
    PromptTooLong,
)
from workers.sampler.openai_engine import EndpointConfig, OpenAIEngine, base_url
from workers.sampler.openai_wire import retry_after_s

Handler = Callable[[httpx.Request], httpx.Response]
MODELS = {"object": "list", "data": [{"id": "tiny", "object": "model", "max_model_len": 512}]}
# vLLM 0.32's own words for a prompt that does not fit (seen from its api_server, 2026-12-01).
CONTEXT_ERROR = {
    "error": {
        "message": "This model's maximum context length is 512 tokens. However, your prompt "
        "contains at least 513 input tokens, which exceeds this limit even without any output "
        "tokens. Please reduce the length of the input prompt. (parameter=input_tokens, "
        "value=513)",
        "type": "BadRequestError",
        "param": "input_tokens",
        "code": 400,
    }
}


def request(prompt: str = "hi", n: int = 3, **kw: Any) -> GenerationRequest:
    options: dict[str, Any] = dict(temperature=1.0, top_p=0.9, top_k=5, max_tokens=4, seed=42)
    options.update(kw)
    return GenerationRequest(prompt=prompt, n=n, **options)


def completion(n: int, tag: str = "t", *, token_ids: bool = True) -> dict[str, Any]:
    # Choices deliberately out of order: the engine must sort them by index.
    choices = []
    for i in reversed(range(n)):
        choice: dict[str, Any] = {"index": i, "text": f"{tag}{i}", "finish_reason": "length"}
        if token_ids:
            choice["token_ids"] = list(range(i + 1))
        choices.append(choice)
    return {"choices": choices, "usage": {"completion_tokens": 10}}


class FakeServer:
    """Answers /v1/models from MODELS and /v1/completions from ``complete``; records bodies."""

    def __init__(self, complete: Callable[[dict[str, Any], int], httpx.Response]) -> None:
        self.complete = complete
        self.bodies: list[dict[str, Any]] = []
        self.headers: list[httpx.Headers] = []
        self.models_up = True
        self.lock = threading.Lock()

    def __call__(self, req: httpx.Request) -> httpx.Response:
        self.headers.append(req.headers)
        if req.url.path == "/v1/models":
            if not self.models_up:
                raise httpx.ConnectError("connection refused", request=req)
            return httpx.Response(200, json=MODELS)
        assert req.url.path == "/v1/completions"
        body = json.loads(req.content)
        with self.lock:
            self.bodies.append(body)
            attempt = len(self.bodies)
        return self.complete(body, attempt)


def engine_for(server: Handler, **config: Any) -> OpenAIEngine:
    options: dict[str, Any] = dict(retries=2, backoff_max_s=0.01, concurrency=4)
    options.update(config)
    cfg = EndpointConfig(url="http://fleet:8000/v1/", served_model="tiny", **options)
    return OpenAIEngine(cfg, transport=httpx.MockTransport(server))


def ok(body: dict[str, Any], attempt: int) -> httpx.Response:
    return httpx.Response(200, json=completion(body["n"], tag=body["prompt"]))


def test_is_a_generation_engine_and_normalises_the_url() -> None:
    engine = engine_for(FakeServer(ok))
    assert isinstance(engine, GenerationEngine)
    assert engine.description == "openai-compatible http://fleet:8000 (tiny)"
    assert base_url("http://h:1/") == base_url("http://h:1/v1") == "http://h:1"


def test_one_request_per_slice_with_n_seed_and_vllm_extras() -> None:
    server = FakeServer(ok)
    engine = engine_for(server, api_key=SecretStr("k-123"))
    out = engine.generate([request("a", 3, seed=7), request("b", 2, seed=None, top_k=0)])
    assert [[c.text for c in outs] for outs in out] == [["a0", "a1", "a2"], ["b0", "b1"]]
    assert [c.tokens for c in out[0]] == [1, 2, 3]  # len(token_ids) of each choice
    by_prompt = {b["prompt"]: b for b in server.bodies}
    assert by_prompt["a"] == {
        "model": "tiny",
        "prompt": "a",
        "n": 3,
        "temperature": 1.0,
        "top_p": 0.9,
        "top_k": 5,
        "max_tokens": 4,
        "return_token_ids": True,
        "seed": 7,
    }
    assert "seed" not in by_prompt["b"] and by_prompt["b"]["top_k"] == 0
    assert all(h["authorization"] == "Bearer k-123" for h in server.headers)


def test_greedy_asks_for_one_draw_and_repeats_it() -> None:
    server = FakeServer(ok)
    out = engine_for(server).generate([request("g", 4, temperature=0.0, seed=None)])
    assert [c.text for c in out[0]] == ["g0"] * 4
    assert server.bodies[0]["n"] == 1 and server.bodies[0]["temperature"] == 0.0


def test_without_token_ids_the_usage_total_is_shared() -> None:
    server = FakeServer(lambda b, a: httpx.Response(200, json=completion(3, token_ids=False)))
    out = engine_for(server).generate([request(n=3)])
    assert [c.tokens for c in out[0]] == [4, 3, 3]  # 10 completion tokens over 3 draws


def test_wrong_number_of_choices_is_an_error_not_a_silent_short_slice() -> None:
    server = FakeServer(lambda b, a: httpx.Response(200, json=completion(2)))
    with pytest.raises(RuntimeError, match="2 choices for a request of n=3"):
        engine_for(server).generate([request(n=3)])


@pytest.mark.parametrize("failure", [429, 500, 503, "connect", "read"])
def test_transient_failures_are_resent_with_the_same_body(failure: int | str) -> None:
    def flaky(body: dict[str, Any], attempt: int) -> httpx.Response:
        if attempt < 3:
            if failure == "connect":
                raise httpx.ConnectError("refused")
            if failure == "read":
                raise httpx.ReadError("connection reset")
            assert isinstance(failure, int)
            return httpx.Response(failure, json={"error": {"message": "busy"}})
        return ok(body, attempt)

    server = FakeServer(flaky)
    out = engine_for(server, retries=2).generate([request(n=2, seed=99)])
    assert [c.text for c in out[0]] == ["hi0", "hi1"]
    assert len(server.bodies) == 3
    assert server.bodies[0] == server.bodies[1] == server.bodies[2]  # same seed each time


def test_spent_retries_with_the_endpoint_gone_defer_the_chunk() -> None:
    server = FakeServer(lambda b, a: httpx.Response(503, json={"error": {"message": "down"}}))
    server.models_up = False
    with pytest.raises(EngineUnavailable, match="HTTP 503: down; endpoint http://fleet:8000"):
        engine_for(server, retries=1).generate([request()])
    assert len(server.bodies) == 2


def test_spent_retries_while_the_endpoint_lists_the_model_are_a_real_failure() -> None:
    server = FakeServer(lambda b, a: httpx.Response(500, json={"error": {"message": "boom"}}))
    with pytest.raises(
        RuntimeError, match=r"failed 2 times on request 0 \(/v1/completions\): HTTP 500: boom"
    ):
        engine_for(server, retries=1).generate([request()])


def test_context_length_error_names_the_prompt_its_length_and_the_limit() -> None:
    def reject_long(body: dict[str, Any], attempt: int) -> httpx.Response:
        if len(body["prompt"]) > 10:
            return httpx.Response(400, json=CONTEXT_ERROR)
        return ok(body, attempt)

    engine = engine_for(FakeServer(reject_long))
    with pytest.raises(PromptTooLong) as caught:
        engine.generate([request("short"), request("word " * 300)])
    assert caught.value.request_index == 1
    assert caught.value.message.startswith(
        "prompt 'word word word word word word word word word word word word ...' "
        "is at least 513 tokens; the model's context is 512 tokens"
    )
    assert engine.generate([request("short", 1)])[0][0].text == "short0"  # still usable


def test_other_bad_requests_are_invalid_input_with_the_servers_message() -> None:
    message = "max_tokens=600 cannot be greater than max_model_len=512."
    server = FakeServer(lambda b, a: httpx.Response(400, json={"error": {"message": message}}))
    with pytest.raises(
        InvalidInput, match=r"rejected request 0 \(/v1/completions\): max_tokens=600"
    ):
        engine_for(server).generate([request()])


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_key_refuses_the_worker(status: int) -> None:
    server = FakeServer(lambda b, a: httpx.Response(status, json={"error": "Unauthorized"}))
    with pytest.raises(EngineRefused, match=f"refused this worker's credentials \\(HTTP {status}"):
        engine_for(server).generate([request(), request()])
    assert len(server.bodies) == 2  # never retried


def test_a_model_the_endpoint_stopped_serving_defers_at_once() -> None:
    message = "The model `tiny` does not exist."
    server = FakeServer(lambda b, a: httpx.Response(404, json={"error": {"message": message}}))
    with pytest.raises(EngineUnavailable, match="HTTP 404: The model `tiny` does not exist"):
        engine_for(server).generate([request()])
    assert len(server.bodies) == 1


def test_a_refusal_wins_over_an_outage_in_the_same_call() -> None:
    def mixed(body: dict[str, Any], attempt: int) -> httpx.Response:
        return httpx.Response(404 if body["prompt"] == "a" else 401, json={})

    with pytest.raises(EngineRefused):
        engine_for(FakeServer(mixed)).generate([request("a"), request("b")])


def test_no_more_than_concurrency_requests_in_flight() -> None:
    in_flight, peak, lock = 0, 0, threading.Lock()

    def slow(body: dict[str, Any], attempt: int) -> httpx.Response:
        nonlocal in_flight, peak
        with lock:
            in_flight += 1
            peak = max(peak, in_flight)
        time.sleep(0.05)
        with lock:
            in_flight -= 1
        return ok(body, attempt)

    out = engine_for(FakeServer(slow), concurrency=3).generate(
        [request(str(i), 1) for i in range(12)]
    )
    assert [outs[0].text for outs in out] == [f"{i}0" for i in range(12)]  # request order kept
    assert peak == 3


def test_check_lists_the_served_model_or_says_what_is_served() -> None:
    server = FakeServer(ok)
    engine = engine_for(server)
    assert engine.check() is None and engine.max_model_len == 512
    other = EndpointConfig(url="http://fleet:8000", served_model="big")
    reason = OpenAIEngine(other, transport=httpx.MockTransport(server)).check()
    assert reason == "endpoint http://fleet:8000 serves ['tiny'], not 'big'"
    server.models_up = False
    assert "does not answer (ConnectError" in str(engine.check())


def test_check_raises_on_a_refused_key() -> None:
    refuse = httpx.MockTransport(lambda r: httpx.Response(401, json={"error": "Unauthorized"}))
    engine = OpenAIEngine(
        EndpointConfig(url="http://fleet:8000", served_model="tiny"), transport=refuse
    )
    with pytest.raises(EngineRefused, match="HTTP 401: Unauthorized"):
        engine.check()


def test_a_path_prefix_in_the_url_is_kept() -> None:
    seen: list[str] = []

    def record(req: httpx.Request) -> httpx.Response:
        seen.append(req.url.path)
        return httpx.Response(200, json=MODELS)

    config = EndpointConfig(url="http://isvc.example/openai/v1", served_model="tiny")
    assert OpenAIEngine(config, transport=httpx.MockTransport(record)).check() is None
    assert seen == ["/openai/v1/models"]


def test_retry_after_is_read_as_seconds_or_an_http_date() -> None:
    now = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)
    assert retry_after_s("3", now=now) == 3.0
    assert retry_after_s(" 0 ", now=now) == 0.0
    assert retry_after_s("Tue, 01 Dec 2026 12:00:07 GMT", now=now) == 7.0
    assert retry_after_s("Tue, 01 Dec 2026 11:59:00 GMT", now=now) == 0.0  # in the past
    for unreadable in (None, "", "-1", "1.5", "soon"):
        assert retry_after_s(unreadable, now=now) is None


@pytest.mark.parametrize("status", [429, 503])
def test_a_retry_after_is_waited_for_then_the_same_body_is_resent(status: int) -> None:
    def limited(body: dict[str, Any], attempt: int) -> httpx.Response:
        if attempt == 1:
            return httpx.Response(
                status, headers={"Retry-After": "1"}, json={"error": {"message": "slow down"}}
            )
        return ok(body, attempt)

    server = FakeServer(limited)
    times: list[float] = []
    original = server.complete

    def timed(body: dict[str, Any], attempt: int) -> httpx.Response:
        times.append(time.monotonic())
        return original(body, attempt)

    server.complete = timed
    # The exponential back-off alone would resend after at most 0.01 s.
    out = engine_for(server, retries=2, backoff_max_s=0.01).generate([request(n=2, seed=5)])
    assert [c.text for c in out[0]] == ["hi0", "hi1"]
    assert server.bodies[0] == server.bodies[1]
    assert times[1] - times[0] >= 0.95  # waited the server's 1 s, not the 0.01 s back-off


def test_a_retry_after_longer_than_the_cap_is_cut_to_the_cap() -> None:
    server = FakeServer(
        lambda b, a: (
            ok(b, a) if a > 1 else httpx.Response(429, headers={"Retry-After": "3600"}, json={})
        )
    )
    started = time.monotonic()
    engine_for(server, retry_after_max_s=0.2).generate([request(n=1)])
    assert 0.15 <= time.monotonic() - started < 30  # 0.2 s, not an hour
    assert len(server.bodies) == 2
