"""probeval.client's retry rules, error mapping and environment, on httpx's MockTransport (a fake
gateway: unit tests only; the client against the real gateway is tests/e2e/test_client_side.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from probeval import client as client_module
from probeval.client import ApiError, AsyncClient, Client, RetryPolicy

JOB = {
    "model": "tiny",
    "prompts": [{"id": "q", "prompt": "p", "reference": "r"}],
    "sampling": {"n": 4},
}
ACCEPTED = {"id": "j1", "status": "queued"}


@pytest.fixture()
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    waited: list[float] = []
    monkeypatch.setattr(client_module.time, "sleep", waited.append)

    async def fake_sleep(s: float) -> None:
        waited.append(s)

    monkeypatch.setattr(client_module.asyncio, "sleep", fake_sleep)
    return waited


Answer = Callable[[httpx.Request], httpx.Response]


def scripted(answers: list[Answer], seen: list[httpx.Request]) -> Answer:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answers.pop(0)(request)

    return handler


def too_many(after: str) -> Callable[[httpx.Request], httpx.Response]:
    body = {"error": {"code": "too_many_requests", "message": "slow down", "param": None}}
    return lambda r: httpx.Response(429, json=body, headers={"Retry-After": after})


def accepted(r: httpx.Request) -> httpx.Response:
    return httpx.Response(202, json=ACCEPTED)


def refuse(r: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("connection refused", request=r)


def test_429_is_retried_after_retry_after_even_for_submit(sleeps: list[float]) -> None:
    seen: list[httpx.Request] = []
    transport = httpx.MockTransport(scripted([too_many("3"), too_many("1"), accepted], seen))
    with Client("http://gw", "k", transport=transport) as c:
        assert c.submit(JOB).id == "j1"
    assert sleeps == [3.0, 1.0]
    assert len(seen) == 3 and all(r.method == "POST" for r in seen)
    assert seen[0].headers["authorization"] == "Bearer k"


def test_retries_stop_after_the_policy_and_raise_the_error_shape(sleeps: list[float]) -> None:
    transport = httpx.MockTransport(scripted([too_many("1")] * 3, []))
    policy = RetryPolicy(retries=2)
    with (
        Client("http://gw", transport=transport, retry=policy) as c,
        pytest.raises(ApiError) as info,
    ):
        c.get("j1")
    assert info.value.status == 429 and info.value.code == "too_many_requests"
    assert sleeps == [1.0, 1.0]


def test_connection_errors_are_retried_only_for_idempotent_calls(sleeps: list[float]) -> None:
    view = {
        "id": "j1",
        "model": "tiny",
        "status": "running",
        "progress": {"samples_done": 1, "samples_total": 4},
        "created_at": 1.0,
        "updated_at": 2.0,
    }

    def ok(r: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=view)

    transport = httpx.MockTransport(scripted([refuse, refuse, ok], []))
    with Client("http://gw", transport=transport, retry=RetryPolicy(backoff_s=0.5)) as c:
        assert c.get("j1").progress.samples_done == 1
    assert sleeps == [0.5, 1.0]  # exponential back-off

    sleeps.clear()
    seen: list[httpx.Request] = []
    transport = httpx.MockTransport(scripted([refuse], seen))
    with Client("http://gw", transport=transport) as c, pytest.raises(httpx.ConnectError):
        c.submit(JOB)  # POST: not repeated, the caller decides
    assert len(seen) == 1 and sleeps == []


def test_error_answers_become_api_errors_naming_the_field() -> None:
    body = {
        "error": {"code": "invalid_input", "message": "sampling.n: too big", "param": "sampling.n"}
    }
    transport = httpx.MockTransport(lambda r: httpx.Response(422, json=body))
    with Client("http://gw", transport=transport) as c, pytest.raises(ApiError) as info:
        c.submit(JOB)
    assert (info.value.status, info.value.param) == (422, "sampling.n")


def test_submit_validates_with_the_shared_schema_before_sending() -> None:
    seen: list[httpx.Request] = []
    transport = httpx.MockTransport(scripted([], seen))
    with (
        Client("http://gw", transport=transport) as c,
        pytest.raises(ValueError, match="sampling.n"),
    ):
        c.submit({**JOB, "sampling": {"n": 0}})
    assert seen == []


def test_url_and_key_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROBEVAL_URL", "http://from-env:9000/")
    monkeypatch.setenv("PROBEVAL_API_KEY", "env-key")
    seen: list[httpx.Request] = []
    list_body = {"jobs": [], "next_after": None}
    transport = httpx.MockTransport(scripted([lambda r: httpx.Response(200, json=list_body)], seen))
    with Client(transport=transport) as c:
        assert c.list(status="queued", limit=5).jobs == []
    assert str(seen[0].url) == "http://from-env:9000/v1/jobs?limit=5&status=queued"
    assert seen[0].headers["authorization"] == "Bearer env-key"
    # The constructor wins over the environment.
    with Client("http://explicit", "arg-key", transport=transport) as c:
        assert c.http.headers["authorization"] == "Bearer arg-key"
        assert str(c.http.base_url) == "http://explicit"


def test_async_client_retries_the_same_way(sleeps: list[float]) -> None:
    seen: list[httpx.Request] = []
    transport = httpx.MockTransport(scripted([too_many("2"), accepted], seen))

    async def go() -> Any:
        async with AsyncClient("http://gw", transport=transport) as c:
            return await c.submit(JOB)

    assert asyncio.run(go()).id == "j1"
    assert sleeps == [2.0] and len(seen) == 2


def test_export_refuses_an_unknown_format(tmp_path: Any) -> None:
    transport = httpx.MockTransport(lambda r: httpx.Response(200))
    with Client("http://gw", transport=transport) as c, pytest.raises(ValueError, match="csv"):
        c.export("j1", tmp_path / "x", format="xlsx")  # type: ignore[arg-type]
