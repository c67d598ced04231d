"""Submit and poll make the fixed number of Redis round trips docs/design/pipeline.md states
(submit 1, poll 1), whatever the number of stored and active jobs; counted on the clients
themselves, through the app in process against the real test redis-server."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import redis
import redis.asyncio
import redis.asyncio.client
import redis.client
from fastapi.testclient import TestClient

from shared import keys
from shared.store import Store

BODY = {
    "model": "tiny",
    "prompts": [{"id": f"q{i}", "prompt": "p", "reference": "r"} for i in range(2)],
    "sampling": {"n": 64, "max_tokens": 4},
}


@pytest.fixture()
def trips(monkeypatch: pytest.MonkeyPatch) -> Iterator[Counter[str]]:
    """Counts single commands and pipeline executions, per client kind (async, sync)."""
    counts: Counter[str] = Counter()

    def counting(cls: Any, name: str, label: str) -> None:
        original = getattr(cls, name)

        async def async_wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            counts[label] += 1
            return await original(self, *args, **kwargs)

        def sync_wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            counts[label] += 1
            return original(self, *args, **kwargs)

        wrapper = async_wrapper if label.startswith("async") else sync_wrapper
        monkeypatch.setattr(cls, name, wrapper)

    counting(redis.asyncio.Redis, "execute_command", "async command")
    counting(redis.asyncio.client.Pipeline, "execute", "async pipeline")
    counting(redis.Redis, "execute_command", "sync command")
    counting(redis.client.Pipeline, "execute", "sync pipeline")
    yield counts


def test_submit_and_poll_are_one_round_trip_each(
    client: TestClient, store: Store, trips: Counter[str]
) -> None:
    first = client.post("/v1/jobs", json=BODY)  # loads the script
    assert first.status_code == 202, first.text
    for _ in range(98):  # stored and active jobs add no round trip (100 is the quota)
        assert client.post("/v1/jobs", json=BODY).status_code == 202
    trips.clear()
    resp = client.post("/v1/jobs", json=BODY)
    assert resp.status_code == 202, resp.text
    assert trips == Counter({"async command": 1})
    job_id = resp.json()["id"]
    # That one step enqueued every chunk: the greedy chunk and one sampling chunk of 2 x 64.
    queue = keys.rq_queue_list(keys.sample_queue("tiny"))
    assert store.r.lrange(queue, -2, -1) == [f"{job_id}-0-sample", f"{job_id}-1-sample"]
    assert store.r.llen(queue) == 2 * 100
    # A refused submit (the tenant is at its limit) is one round trip too and enqueues nothing.
    trips.clear()
    assert client.post("/v1/jobs", json=BODY).status_code == 429
    assert trips == Counter({"async command": 1})
    assert store.r.llen(queue) == 2 * 100
    trips.clear()
    view = client.get(f"/v1/jobs/{job_id}").json()
    assert trips == Counter({"async command": 1})
    assert (view["status"], view["model"], view["progress"]) == (
        "queued",
        "tiny",
        {"samples_done": 0, "samples_total": 128},
    )


def test_a_record_without_its_model_field_is_still_shown(client: TestClient, store: Store) -> None:
    """Records written before the model had its own field: the view reads it from the spec."""
    job_id = client.post("/v1/jobs", json=BODY).json()["id"]
    store.r.hdel(keys.job(job_id), "model")
    view = client.get(f"/v1/jobs/{job_id}").json()
    assert (view["id"], view["model"], view["status"]) == (job_id, "tiny", "queued")


def test_poll_of_a_missing_job_is_404_in_the_error_shape(client: TestClient) -> None:
    resp = client.get("/v1/jobs/" + "0" * 32)
    assert resp.status_code == 404
    assert resp.json()["error"]["param"] == "id"
