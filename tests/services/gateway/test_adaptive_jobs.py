"""Adaptive jobs in one process: gateway (TestClient) -> RQ -> sampler and scorer tasks run by
burst SimpleWorkers against a real Redis, with a fake engine. Rounds are scheduled by the scorer
through the queue; the real-process version with vLLM is tests/e2e/test_adaptive.py."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from fastapi.testclient import TestClient
from rq import SimpleWorker
from rq.serializers import JSONSerializer

from shared import keys
from shared.adaptive import successor_chunk_id
from shared.config import Settings
from shared.queues import rq_connection, sample_queue, score_queue
from shared.schemas import BoundsOptions, ChunkTask, StoppingSpec
from shared.sequential import run_sequential
from shared.store import Store
from tests.fixtures.fakes import FakeEngine
from tests.fixtures.pipeline import drain, worker_runtime
from workers.runtime import RuntimeJob

# Scorer `contains`: the fake engine draws 1-4 words from 8, so "paris" is in about a third of
# the draws, "zzz" in none, and the empty reference in all of them.
PROMPTS = [
    {"id": "some", "prompt": "q some", "reference": "paris"},
    {"id": "never", "prompt": "q never", "reference": "zzz"},
    {"id": "always", "prompt": "q always", "reference": ""},
]
# P("paris" in a draw) = 1 - E[(7/8)^k], k uniform on 1..4 words (max_tokens 4).
RATE_SOME = 1.0 - sum((7 / 8) ** k for k in range(1, 5)) / 4
STOPPING = {"target": "p_full", "threshold": 0.05, "min_n": 16, "max_n": 512, "round": 16}


def submit(client: TestClient, **overrides: Any) -> str:
    body: dict[str, Any] = {
        "model": "tiny",
        "prompts": PROMPTS,
        "sampling": {"max_tokens": 4, "seed": 7},
        "scorer": {"name": "contains"},
        "alpha": 0.05,
        "thresholds": [0.5],
        "stopping": STOPPING,
    }
    body.update(overrides)
    resp = client.post("/v1/jobs", json=body)
    assert resp.status_code == 202, resp.text
    return str(resp.json()["id"])


def stored_rows(client: TestClient, job_id: str) -> list[list[float]]:
    rows = []
    for p in PROMPTS:
        page = client.get(
            f"/v1/jobs/{job_id}/samples", params={"prompt_id": p["id"], "limit": 1000}
        ).json()
        indices = [s["index"] for s in page["samples"]]
        assert indices == list(range(len(indices))) and page["total"] == len(indices)
        rows.append([s["score"] for s in page["samples"]])
    return rows


def test_adaptive_job_stops_each_prompt_when_its_answer_is_certain(
    client: TestClient, settings: Settings, store: Store
) -> None:
    rt = worker_runtime(settings, FakeEngine(), "tiny")
    job_id = submit(client)
    view = client.get(f"/v1/jobs/{job_id}").json()
    assert view["progress"]["samples_total"] == 3 * 16  # only the first rounds are planned
    assert view["adaptive"] == {"prompts_open": 3, "prompts_stopped": 0}
    drain(rt)

    view = client.get(f"/v1/jobs/{job_id}").json()
    assert view["status"] == "succeeded", view
    assert view["adaptive"] == {"prompts_open": 0, "prompts_stopped": 3}
    results = client.get(f"/v1/jobs/{job_id}/results").json()
    seq = {p["id"]: p["sequential"] for p in results["prompts"]}
    assert seq["always"]["n_used"] == 16 and seq["always"]["decision"] == "above"
    assert seq["some"]["decision"] == "above" and seq["some"]["n_used"] < 512
    assert seq["never"]["decision"] == "below" and 16 < seq["never"]["n_used"] < 512
    assert all(p["bounds"] is None and p["full_score"] is None for p in results["prompts"])
    assert results["summary"]["decisions"] == {"above": 2, "below": 1}

    # Stored draws are exactly n_used per prompt, indices 0..n_used-1, and progress counts them.
    rows = stored_rows(client, job_id)
    assert [len(r) for r in rows] == [seq[p["id"]]["n_used"] for p in PROMPTS]
    assert (
        view["progress"]["samples_done"]
        == view["progress"]["samples_total"]
        == sum(len(r) for r in rows)
    )
    # The same code offline (`probeval bounds --sequential`) gives the same rows.
    offline = run_sequential(
        rows,
        StoppingSpec(**STOPPING),
        BoundsOptions(alpha=0.05, thresholds=[0.5]),
    ).model_dump(by_alias=True)["rows"]
    assert [p["sequential"] for p in results["prompts"]] == offline
    report = client.get(f"/v1/jobs/{job_id}/report")
    assert report.status_code == 200 and "stopped at n = 16: above" in report.text
    csv = client.get(f"/v1/jobs/{job_id}/results.csv")
    assert csv.status_code == 200, csv.text
    header, *lines = csv.text.splitlines()
    assert "sequential.n_used" in header.split(",") and len(lines) == 3
    assert "sequential.anytime.survival[x=0.5].upper" in header.split(",")
    parquet = client.get(f"/v1/jobs/{job_id}/export.parquet", params={"table": "results"})
    assert parquet.status_code == 200


def test_the_open_prompts_next_rounds_go_in_one_chunk(
    client: TestClient, settings: Settings, store: Store
) -> None:
    # A width rule on the mean keeps the prompts open for a few rounds: after the greedy
    # chunk and the one chunk of first rounds (3 x 16 draws fit 128), each later round of the
    # prompts still open is ONE chunk, so the job has 1 + (rounds of its longest prompt) chunks.
    rt = worker_runtime(settings, FakeEngine(), "tiny")
    stopping = {"target": "mean", "width": 0.3, "min_n": 16, "max_n": 512, "round": 16}
    job_id = submit(client, stopping=stopping)
    drain(rt)
    results = client.get(f"/v1/jobs/{job_id}/results").json()
    n_used = [p["sequential"]["n_used"] for p in results["prompts"]]
    assert sum(n > 16 for n in n_used) >= 2, n_used  # at least two prompts went on together
    assert int(store.r.hget(keys.job(job_id), "chunks_total") or 0) == 1 + max(n_used) // 16
    spec = store.get_job(job_id).spec
    second = ChunkTask.model_validate_json(
        str(store.r.hget(keys.job_chunks(job_id), str(successor_chunk_id(spec, 1))))
    )
    assert sorted({sl.prompt_index for sl in second.slices}) == [
        i for i, n in enumerate(n_used) if n > 16
    ]
    assert all(sl.start == 16 and sl.count == 16 for sl in second.slices)


def test_seeded_adaptive_job_is_reproducible(
    client: TestClient, settings: Settings, store: Store
) -> None:
    rt = worker_runtime(settings, FakeEngine(seed=1), "tiny")
    first = submit(client)
    drain(rt)
    rt = worker_runtime(settings, FakeEngine(seed=2), "tiny")  # engine rng differs; seeds rule
    second = submit(client)
    drain(rt)
    a = client.get(f"/v1/jobs/{first}/results").json()["prompts"]
    b = client.get(f"/v1/jobs/{second}/results").json()["prompts"]
    assert [p["sequential"] for p in a] == [p["sequential"] for p in b]
    assert stored_rows(client, first) == stored_rows(client, second)


def test_a_scorer_killed_mid_transition_loses_no_round_and_adds_none(
    client: TestClient, settings: Settings, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The scorer dies after the compare-and-set recorded the next round but before it was
    enqueued (and RQ runs the chunk again); then a scorer runs a round twice. Both jobs end
    exactly like an undisturbed run of the same seeded job."""
    import shared.adaptive as adaptive

    rt = worker_runtime(settings, FakeEngine(), "tiny")
    reference = submit(client)
    drain(rt)

    job_id = submit(client)
    real = adaptive.enqueue_sampling
    calls = {"n": 0}

    def dies_once(*args: Any, **kwargs: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise SystemExit("killed")  # like kill -9: nothing after the CAS ran
        real(*args, **kwargs)

    monkeypatch.setattr(adaptive, "enqueue_sampling", dies_once)
    from workers.scorer.tasks import score_chunk

    conn = rq_connection(settings.redis_url)
    for _ in range(200):
        SimpleWorker(
            [sample_queue(conn, "tiny")],
            connection=conn,
            serializer=JSONSerializer,
            job_class=RuntimeJob.bound_to(rt),
        ).work(burst=True)
        queue = score_queue(conn)
        for rq_id in queue.get_job_ids():
            job = queue.fetch_job(rq_id)
            assert job is not None
            queue.remove(rq_id)
            payload = job.args[0]
            with contextlib.suppress(SystemExit):
                score_chunk(rt, payload)  # when it dies, RQ's abandoned-job handling reruns it:
            score_chunk(rt, payload)  # a second run of every round (retry or duplicate)
        if not conn.llen(keys.rq_queue_list(keys.sample_queue("tiny"))) and not queue.count:
            break
    assert calls["n"] >= 2
    view = client.get(f"/v1/jobs/{job_id}").json()
    assert view["status"] == "succeeded", view
    a = client.get(f"/v1/jobs/{reference}/results").json()["prompts"]
    b = client.get(f"/v1/jobs/{job_id}/results").json()["prompts"]
    assert [p["sequential"] for p in a] == [p["sequential"] for p in b]
    assert stored_rows(client, job_id) == stored_rows(client, reference)
    assert view["progress"] == client.get(f"/v1/jobs/{reference}").json()["progress"]


def test_max_draws_caps_the_job_and_stops_open_prompts_undecided(
    client: TestClient, settings: Settings, store: Store
) -> None:
    rt = worker_runtime(settings, FakeEngine(), "tiny")
    job_id = submit(client, max_draws=3 * 16 + 32)
    drain(rt)
    results = client.get(f"/v1/jobs/{job_id}/results").json()
    seq = {p["id"]: p["sequential"] for p in results["prompts"]}
    assert seq["never"]["decision"] == "undecided" and seq["never"]["reason"] == "max_draws"
    assert sum(s["n_used"] for s in seq.values()) <= 3 * 16 + 32
    assert client.get(f"/v1/jobs/{job_id}").json()["progress"]["samples_total"] <= 80


def test_futility_gives_up_an_undecidable_prompt_and_decides_the_others(
    client: TestClient, settings: Settings, store: Store
) -> None:
    rt = worker_runtime(settings, FakeEngine(), "tiny")
    stopping = {**STOPPING, "threshold": RATE_SOME, "futility": 0.2}
    plain = submit(client, stopping={**stopping, "futility": None})
    futile = submit(client, stopping=stopping)
    drain(rt)
    seq = {
        job: {
            p["id"]: p["sequential"]
            for p in client.get(f"/v1/jobs/{job}/results").json()["prompts"]
        }
        for job in (plain, futile)
    }
    assert (seq[plain]["some"]["decision"], seq[plain]["some"]["reason"]) == ("undecided", "max_n")
    some = seq[futile]["some"]
    assert (some["decision"], some["reason"]) == ("undecided", "futile") and some["n_used"] < 512
    for pid in ("never", "always"):  # clear answers: the same stop with or without futility
        assert seq[futile][pid] == seq[plain][pid] and seq[plain][pid]["reason"] == "threshold"
    view = client.get(f"/v1/jobs/{futile}").json()
    assert view["adaptive"] == {"prompts_open": 0, "prompts_stopped": 3}
    assert view["progress"]["samples_done"] == sum(s["n_used"] for s in seq[futile].values())
    offline = run_sequential(
        stored_rows(client, futile),
        StoppingSpec(**stopping),
        BoundsOptions(alpha=0.05, thresholds=[0.5]),
    ).model_dump(by_alias=True)["rows"]
    assert list(seq[futile].values()) == offline


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"stopping": {**STOPPING, "target": "median"}}, "stopping.target"),
        ({"stopping": {**STOPPING, "target": "survival"}}, "stopping.x"),
        ({"stopping": {**STOPPING, "x": 0.5}}, "stopping.x"),
        ({"stopping": {**STOPPING, "target": "survival", "x": 1.0}}, "stopping.x"),
        ({"stopping": {**STOPPING, "threshold": None}}, "stopping.threshold"),
        ({"stopping": {**STOPPING, "width": 0.1}}, "stopping.threshold"),
        ({"stopping": {**STOPPING, "threshold": 1.0}}, "stopping.threshold"),
        ({"stopping": {**STOPPING, "threshold": "0.1"}}, "stopping.threshold"),
        ({"stopping": {**STOPPING, "threshold": None, "width": 0.0}}, "stopping.width"),
        ({"stopping": {**STOPPING, "threshold": None, "width": 1.5}}, "stopping.width"),
        ({"stopping": {**STOPPING, "min_n": 0}}, "stopping.min_n"),
        ({"stopping": {**STOPPING, "min_n": 600}}, "stopping.min_n"),
        ({"stopping": {**STOPPING, "max_n": 0}}, "stopping.max_n"),
        ({"stopping": {**STOPPING, "max_n": 4096}}, "stopping.max_n"),
        ({"stopping": {**STOPPING, "round": 0}}, "stopping.round"),
        ({"stopping": {**STOPPING, "round": 1024}}, "stopping.round"),
        ({"stopping": {**STOPPING, "round": True}}, "stopping.round"),
        ({"stopping": {**STOPPING, "extra": 1}}, "stopping.extra"),
        ({"stopping": {**STOPPING, "futility": 0.0}}, "stopping.futility"),
        ({"stopping": {**STOPPING, "futility": 0.6}}, "stopping.futility"),
        ({"stopping": {**STOPPING, "futility": "0.05"}}, "stopping.futility"),
        ({"stopping": {**STOPPING, "futility": True}}, "stopping.futility"),
        ({"stopping": {**STOPPING, "target": "mean", "futility": 0.05}}, "stopping.futility"),
        ({"stopping": {**STOPPING, "threshold": None, "width": 0.1, "futility": 0.05}},
         "stopping.futility"),
        ({"stopping": {k: v for k, v in STOPPING.items() if k != "max_n"}}, "stopping.max_n"),
        ({"sampling": {"n": 100, "max_tokens": 4}}, "stopping.max_n"),
        ({"max_draws": 10}, "max_draws"),
        ({"max_draws": 0}, "max_draws"),
        ({"max_draws": 10**9}, "max_draws"),
        ({"stopping": None, "max_draws": 100}, "max_draws"),
        ({"stopping": {**STOPPING, "max_n": 2048}, "prompts": PROMPTS * 0 + [
            {"id": f"p{i}", "prompt": "q", "reference": "a"} for i in range(20)
        ]}, "stopping.max_n"),
    ],
)  # fmt: skip
def test_invalid_stopping_is_a_422_naming_the_field(
    client: TestClient, change: dict[str, Any], param: str
) -> None:
    body: dict[str, Any] = {
        "model": "tiny",
        "prompts": PROMPTS,
        "scorer": {"name": "contains"},
        "stopping": STOPPING,
        **change,
    }
    resp = client.post("/v1/jobs", json=body)
    assert resp.status_code == 422, resp.text
    error = resp.json()["error"]
    assert error["param"] == param, error
    assert param.split(".")[-1] in error["message"]


def test_an_adaptive_job_cannot_be_rescored(
    client: TestClient, settings: Settings, store: Store
) -> None:
    rt = worker_runtime(settings, FakeEngine(), "tiny")
    job_id = submit(client)
    drain(rt)
    resp = client.post(f"/v1/jobs/{job_id}/rescore", json={"scorer": {"name": "exact_match"}})
    assert resp.status_code == 409 and resp.json()["error"]["param"] == "id", resp.text
