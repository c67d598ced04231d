"""Webhooks, the job list and the event stream against real processes: redis-server, the gateway and a scorer
worker (no sampler: draws are written through shared.store where no generation is needed, then
the real scorer scores them and finalises the job). A real HTTP server in the test receives.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from probeval.client import AsyncClient, Client
from probeval.local import ProcessGroup, free_port, start_gateway, start_redis, start_scorer
from shared.callbacks import verify
from shared.config import Settings
from shared.queues import enqueue_scoring, rq_connection
from shared.store import Store, connect

pytestmark = [pytest.mark.slow]

KEY_A, KEY_B = "e2e-key-a", "e2e-key-b"
AUTH_A = {"Authorization": f"Bearer {KEY_A}"}
AUTH_B = {"Authorization": f"Bearer {KEY_B}"}
SECRET_A = "whsec-team-a"
MODEL = "tiny"
ENV = {
    "PROBEVAL_API_KEYS": f"team-a:{KEY_A},team-b:{KEY_B}",
    "PROBEVAL_WEBHOOK_SECRETS": f"team-a:{SECRET_A}",
    "PROBEVAL_CALLBACK_ALLOWED_NETWORKS": "127.0.0.0/8",
    "PROBEVAL_CALLBACK_BACKOFF_S": "1",
    "PROBEVAL_CALLBACK_RETRY_WINDOW_S": "120",
    "PROBEVAL_WORKER_TTL_S": "1e9",
    "PROBEVAL_ABANDON_AFTER_S": "4",
}


@dataclass
class Backend:
    group: ProcessGroup
    redis_url: str
    port: int
    env: dict[str, str]

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, headers: dict[str, str] = AUTH_A) -> httpx.Client:
        return httpx.Client(base_url=self.base, timeout=30, headers=headers)

    def store(self) -> Store:
        return Store(connect(self.redis_url), retention_s=3600)

    def restart_gateway(self) -> None:
        self.group.stop("gateway")
        start_gateway(self.group, "127.0.0.1", self.port, self.env)

    def restart_scorer(self) -> None:
        self.group.stop("scorer")
        start_scorer(self.group, self.env)


@pytest.fixture(scope="module")
def backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    root = tmp_path_factory.mktemp("webhooks")
    group = ProcessGroup(root / "logs")
    try:
        url = start_redis(group, root / "redis", free_port(), appendonly=False)
        Store(connect(url), retention_s=3600).heartbeat(MODEL, "fake-worker", "fake 0", ttl_s=1e9)
        env = {**ENV, "PROBEVAL_REDIS_URL": url}
        port = free_port()
        start_gateway(group, "127.0.0.1", port, env)
        start_scorer(group, env)
        yield Backend(group, url, port, env)
    finally:
        group.stop()


@dataclass
class Receiver:
    """A real HTTP server that records every POST; can be down (not listening) at first."""

    port: int = field(default_factory=free_port)
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> None:
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["content-length"]))
                received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


@pytest.fixture()
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    try:
        yield r
    finally:
        r.stop()


def body(**extra: Any) -> dict[str, Any]:
    return {
        "model": MODEL,
        "prompts": [
            {"id": "q0", "prompt": "p0", "reference": "paris"},
            {"id": "q1", "prompt": "p1", "reference": "rome"},
        ],
        "sampling": {"n": 50, "max_tokens": 4},
        "greedy": False,
        **extra,
    }


def submit(backend: Backend, headers: dict[str, str] = AUTH_A, **extra: Any) -> str:
    with backend.client(headers) as c:
        resp = c.post("/v1/jobs", json=body(**extra))
    assert resp.status_code == 202, resp.text
    return str(resp.json()["id"])


def finish_by_scoring(backend: Backend, job_id: str) -> None:
    """Write every draw as a sampler would, then queue each chunk's scoring for the scorer."""
    store = backend.store()
    for p in range(2):
        store.save_texts(job_id, p, {i: f"draw {i} paris" if i % 3 else "rome" for i in range(50)})
    rq = rq_connection(backend.redis_url)
    settings = Settings(redis_url=backend.redis_url)
    for chunk in store.chunk_plan(job_id):
        enqueue_scoring(rq, chunk, settings)


def view(backend: Backend, job_id: str) -> dict[str, Any]:
    with backend.client() as c:
        return dict(c.get(f"/v1/jobs/{job_id}").json())


def wait_for(check: Any, timeout_s: float, what: str, backend: Backend) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise TimeoutError(f"{what}\n--- scorer\n{backend.group.log_tail('scorer')}")


def assert_one_signed_delivery(receiver: Receiver, job_id: str, status: str) -> dict[str, Any]:
    assert len(receiver.received) == 1, receiver.received
    headers, raw = receiver.received[0]
    assert verify(SECRET_A, headers["probeval-signature"], raw, now=time.time())
    assert headers["probeval-delivery"] == job_id
    delivered = json.loads(raw)
    assert delivered["id"] == job_id and delivered["status"] == status
    return dict(delivered)


def test_webhook_survives_a_down_receiver_and_gateway_and_scorer_restarts(
    backend: Backend, receiver: Receiver
) -> None:
    job_id = submit(backend, callback_url=receiver.url)
    assert view(backend, job_id)["callback"] == {
        "url": receiver.url,
        "state": "none",
        "attempts": 0,
        "last_error": None,
        "delivered_at": None,
    }
    finish_by_scoring(backend, job_id)
    # The receiver is down: attempts fail and are retried with back-off.
    wait_for(
        lambda: (view(backend, job_id)["callback"] or {}).get("attempts", 0) >= 2,
        60,
        "no second attempt",
        backend,
    )
    state = view(backend, job_id)
    assert state["status"] == "succeeded"
    assert (
        state["callback"]["state"] == "pending"
        and "ConnectError" in (state["callback"]["last_error"])
    )
    backend.restart_gateway()
    backend.restart_scorer()
    receiver.start()
    wait_for(lambda: receiver.received, 60, "no delivery after the receiver came up", backend)
    time.sleep(3)  # a second delivery would have arrived by now (retries are 1-4 s apart)
    delivered = assert_one_signed_delivery(receiver, job_id, "succeeded")
    assert delivered["progress"] == {"samples_done": 100, "samples_total": 100}
    final = view(backend, job_id)["callback"]
    assert final["state"] == "delivered" and final["attempts"] >= 3
    assert final["delivered_at"] is not None


def test_cancel_in_the_gateway_delivers_once(backend: Backend, receiver: Receiver) -> None:
    receiver.start()
    job_id = submit(backend, callback_url=receiver.url)
    with backend.client() as c:
        assert c.delete(f"/v1/jobs/{job_id}").json()["status"] == "cancelled"
        assert c.delete(f"/v1/jobs/{job_id}").status_code == 409  # no second terminal change
    wait_for(lambda: receiver.received, 30, "no delivery of the cancelled job", backend)
    time.sleep(2)
    assert_one_signed_delivery(receiver, job_id, "cancelled")
    assert view(backend, job_id)["callback"]["state"] == "delivered"


def test_list_pages_and_filters_on_the_real_gateway(backend: Backend) -> None:
    # The module's other jobs have ended; of queued ones team-a has only these.
    ids = [submit(backend) for _ in range(9)]
    done = ids[2]
    finish_by_scoring(backend, done)
    wait_for(lambda: view(backend, done)["status"] == "succeeded", 60, "not scored", backend)
    with backend.client() as c:
        assert c.delete(f"/v1/jobs/{ids[4]}").status_code == 200
        pages: list[list[str]] = []
        after: str | None = None
        while True:
            params: dict[str, Any] = {"limit": 3, "status": "queued", "model": MODEL}
            page = c.get("/v1/jobs", params={**params, **({"after": after} if after else {})})
            pages.append([j["id"] for j in page.json()["jobs"]])
            after = page.json()["next_after"]
            if after is None:
                break
        queued = [i for i in reversed(ids) if i not in (done, ids[4])]
        assert pages == [queued[0:3], queued[3:6], queued[6:7]]
        succeeded = c.get("/v1/jobs", params={"status": "succeeded", "limit": 1}).json()
        assert [j["id"] for j in succeeded["jobs"]] == [done]
        assert succeeded["jobs"][0]["prompts"] == 2
        assert c.get("/v1/jobs", params={"model": "nope"}).json() == {
            "jobs": [],
            "next_after": None,
        }
    with backend.client(AUTH_B) as c:
        assert all(j["id"] not in ids for j in c.get("/v1/jobs").json()["jobs"])
        assert c.get(f"/v1/jobs/{ids[0]}").status_code == 404
    with httpx.Client(base_url=backend.base) as c:
        assert c.get("/v1/jobs").status_code == 401


def test_events_are_tenant_scoped_and_end_when_the_job_ends(backend: Backend) -> None:
    job_id = submit(backend)
    with backend.client(AUTH_B) as c:
        resp = c.get(f"/v1/jobs/{job_id}/events")
        assert resp.status_code == 404 and resp.json()["error"]["param"] == "id"
    with httpx.Client(base_url=backend.base) as c:
        assert c.get(f"/v1/jobs/{job_id}/events").status_code == 401
    with Client(backend.base, KEY_A) as client:
        stream = client.events(job_id)
        first = next(stream)
        assert first.event == "progress" and json.loads(first.data)["status"] == "queued"
        finish_by_scoring(backend, job_id)
        rest = [(e.event, json.loads(e.data)) for e in stream]
    assert rest[-1][0] == "end" and rest[-1][1]["status"] == "succeeded"
    assert rest[-1][1]["progress"]["samples_done"] == 100
    # A stream opened after the end delivers the end at once, then closes.
    with Client(backend.base, KEY_A) as client:
        assert [e.event for e in client.events(job_id)] == ["end"]
        assert client.wait(job_id).status.value == "succeeded"


def test_twenty_streams_share_one_watcher(backend: Backend) -> None:
    """Open streams do not each poll Redis: the gateway's one watcher reads all watched jobs
    in one pipelined HMGET per 0.5 s tick, so 20 streams over ~3 s cost about 6 HMGETs (20
    clients polling every 0.5 s would cost about 120)."""
    job_id = submit(backend)
    r = connect(backend.redis_url)

    def hmgets() -> int:
        stats = r.info("commandstats").get("cmdstat_hmget", {"calls": 0})
        return int(stats["calls"])

    with contextlib.ExitStack() as streams, backend.client() as c:
        for _ in range(20):
            resp = streams.enter_context(c.stream("GET", f"/v1/jobs/{job_id}/events"))
            assert resp.status_code == 200
        before = hmgets()
        time.sleep(3)
        calls = hmgets() - before
    assert 1 <= calls <= 15, calls


def test_async_client_against_the_real_gateway(backend: Backend, tmp_path: Any) -> None:
    async def go() -> None:
        async with AsyncClient(backend.base, KEY_A) as c:
            job_id = (await c.submit(body())).id
            assert (await c.get(job_id)).status.value == "queued"
            assert job_id in [j.id for j in (await c.list(limit=5)).jobs]
            finish_by_scoring(backend, job_id)
            view = await c.wait(job_id, timeout_s=60)
            assert view.status.value == "succeeded"
            results = await c.results(job_id)
            assert [p.n for p in results.prompts] == [50, 50]
            draws = [d async for d in c.samples(job_id)]
            assert len(draws) == 100 and draws[0].prompt_id == "q0"
            path = await c.export(job_id, tmp_path / "r.csv", format="csv")
            assert path.read_text().splitlines()[0].startswith("id,n,")
            rescored = await c.rescore(job_id, {"name": "exact_match"})
            assert (await c.wait(rescored.id, timeout_s=60)).source_job == job_id
            other = await c.submit(body())
            assert (await c.cancel(other.id)) is not None
            assert (await c.cancel(other.id, purge=True)) is None

    asyncio.run(go())
