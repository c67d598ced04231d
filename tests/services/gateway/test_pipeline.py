"""The job pipeline in one process: gateway (TestClient) -> RQ -> sampler and scorer tasks run by
burst SimpleWorkers against a real Redis, with a fake engine. The real-process version with vLLM
is tests/e2e."""

from __future__ import annotations

from typing import Any

import redis
from fastapi.testclient import TestClient

from shared.bounds import compute_bounds
from shared.config import Settings
from shared.results import full_score_bounds
from shared.schemas import BoundsOptions, ChunkTask
from shared.store import Store
from tests.fixtures.fakes import FakeEngine
from tests.fixtures.pipeline import cancel_after_first_chunk, drain, worker_runtime
from workers.sampler.tasks import sample_chunk
from workers.scorer.tasks import score_chunk


def submit(client: TestClient, **overrides: Any) -> str:
    body: dict[str, Any] = {
        "model": "tiny",
        "prompts": [
            {"id": f"q{i}", "prompt": f"question {i}", "reference": "the capital is paris"}
            for i in range(3)
        ],
        "sampling": {"n": 100, "max_tokens": 4},
        "thresholds": [0.25, 0.5],
        "quantiles": [0.5, 0.9],
    }
    body.update(overrides)
    resp = client.post("/v1/jobs", json=body)
    assert resp.status_code == 202, resp.text
    assert resp.headers["location"] == f"/v1/jobs/{resp.json()['id']}"
    assert resp.json()["status"] == "queued"
    return str(resp.json()["id"])


def test_job_runs_to_success_with_exact_draws(
    client: TestClient, settings: Settings, store: Store
) -> None:
    rt = worker_runtime(settings, FakeEngine(), "tiny")
    job_id = submit(client)
    assert client.get(f"/v1/jobs/{job_id}/results").status_code == 409
    drain(rt)

    view = client.get(f"/v1/jobs/{job_id}").json()
    assert view["status"] == "succeeded", view
    assert view["progress"] == {"samples_done": 300, "samples_total": 300}

    results = client.get(f"/v1/jobs/{job_id}/results").json()
    assert [p["id"] for p in results["prompts"]] == ["q0", "q1", "q2"]
    rows = []
    for prompt in results["prompts"]:
        assert prompt["n"] == 100
        assert prompt["greedy"]["text"] == "paris london rome"
        stored: list[float] = []
        for offset in (0, 50):
            page = client.get(
                f"/v1/jobs/{job_id}/samples",
                params={"prompt_id": prompt["id"], "offset": offset, "limit": 50},
            ).json()
            assert page["total"] == 100
            assert [s["index"] for s in page["samples"]] == list(range(offset, offset + 50))
            stored += [s["score"] for s in page["samples"]]
        rows.append(stored)
    # The results are the bounds of the stored scores, computed the same way (same batch).
    options = BoundsOptions(alpha=0.01, thresholds=[0.25, 0.5], quantiles=[0.5, 0.9])
    expected = compute_bounds(rows, options).model_dump(by_alias=True)["rows"]
    assert [p["bounds"] for p in results["prompts"]] == expected
    full = [f.model_dump() for f in full_score_bounds(rows, 0.01)]
    assert [p["full_score"] for p in results["prompts"]] == full
    summary = results["summary"]
    assert summary["prompts"] == 3
    assert summary["max_expectation_upper"] == max(
        p["bounds"]["expectation"]["upper"] for p in results["prompts"]
    )


def test_a_chunk_that_runs_twice_duplicates_nothing(
    client: TestClient, settings: Settings, store: Store
) -> None:
    rt = worker_runtime(settings, FakeEngine(seed=1), "tiny")
    job_id = submit(client, greedy=False)
    chunk = store.chunk_plan(job_id)[0]
    payload = chunk.model_dump(mode="json")
    sample_chunk(rt, payload)
    first_texts = store.texts(job_id, 0, list(range(chunk.slices[0].count)))
    sample_chunk(rt, payload)  # a retry, or a worker that died after writing
    score_chunk(rt, payload)
    score_chunk(rt, payload)
    assert store.texts(job_id, 0, list(range(chunk.slices[0].count))) == first_texts
    drain(rt)
    view = store.get_job(job_id)
    assert view.status.value == "succeeded"
    assert view.samples_done == 300
    for p in range(3):
        assert store.count_texts(job_id, p) == 100
        assert sorted(store.all_scores(job_id, p)) == list(range(100))
    assert rt.engine is not None


def test_seeded_jobs_draw_the_same_samples(
    client: TestClient, settings: Settings, store: Store
) -> None:
    rt = worker_runtime(settings, FakeEngine(), "tiny")
    a = submit(client, sampling={"n": 100, "max_tokens": 4, "seed": 7})
    b = submit(client, sampling={"n": 100, "max_tokens": 4, "seed": 7})
    drain(rt)
    assert store.texts(a, 1, list(range(100))) == store.texts(b, 1, list(range(100)))


def test_cancel_keeps_what_was_drawn_and_marks_results_partial(
    client: TestClient, settings: Settings, store: Store, redis_client: redis.Redis
) -> None:
    rt = worker_runtime(settings, FakeEngine(), "tiny")
    job_id = submit(client, greedy=False)
    first = cancel_after_first_chunk(client, rt, store, job_id)
    assert store.get_job(job_id).status.value == "cancelled"
    results = client.get(f"/v1/jobs/{job_id}/results").json()
    assert results["partial"] is True and results["status"] == "cancelled"
    drawn = sum(sl.count for sl in first.slices)
    assert sum(p["n"] for p in results["prompts"]) == drawn
    assert client.delete(f"/v1/jobs/{job_id}").status_code == 409


def test_prompt_too_long_fails_the_job_with_a_readable_error(
    client: TestClient, settings: Settings, store: Store
) -> None:
    rt = worker_runtime(settings, FakeEngine(max_prompt_chars=20), "tiny")
    prompts = [
        {"id": "short", "prompt": "x", "reference": "r"},
        {"id": "long", "prompt": "x" * 50, "reference": "r"},
    ]
    job_id = submit(client, prompts=prompts, greedy=False)
    drain(rt)
    view = client.get(f"/v1/jobs/{job_id}").json()
    assert view["status"] == "failed"
    assert "too long" in view["error"]["message"]
    assert view["error"]["param"] == "prompts[1].prompt"


def test_a_chunk_that_keeps_raising_fails_the_job_after_retries(
    client: TestClient, settings: Settings, store: Store
) -> None:
    class Broken(FakeEngine):
        def generate(self, requests: Any) -> Any:
            raise RuntimeError("engine exploded")

    rt = worker_runtime(settings, Broken(), "tiny")
    job_id = submit(client)
    drain(rt)
    view = client.get(f"/v1/jobs/{job_id}").json()
    assert view["status"] == "failed"
    assert "engine exploded" in view["error"]["message"]


def test_chunk_task_payload_round_trips() -> None:
    task = ChunkTask(job_id="j", chunk_id=3, slices=[])
    assert ChunkTask.model_validate(task.model_dump(mode="json")) == task
