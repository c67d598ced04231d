"""POST /v1/compare and POST /v1/plan against a real Redis (jobs written through the Store, as
the scorer writes them), and leak@k / family fields of /v1/bounds and job results."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from services.gateway.main import create_app
from shared.config import Settings
from shared.metrics import record_generated
from shared.planning import plan_chunks
from shared.results import build_results
from shared.schemas import JobCreate, JobStatus
from shared.store import ACTIVE, Store
from tests.fixtures.pipeline import register_model

KEY_A, KEY_B = "key-of-team-a", "key-of-team-b"


@pytest.fixture()
def client(redis_url: str, store: Store) -> Iterator[TestClient]:
    settings = Settings(redis_url=redis_url, api_keys=f"team-a:{KEY_A},team-b:{KEY_B}")
    register_model(store, "tiny")
    with TestClient(create_app(settings)) as c:
        c.headers["Authorization"] = f"Bearer {KEY_A}"
        yield c


def make_job(
    store: Store,
    rows: list[list[float]],
    *,
    tenant: str = "team-a",
    ids: list[str] | None = None,
    scorer: dict[str, Any] | None = None,
    status: JobStatus = JobStatus.succeeded,
    **spec_fields: Any,
) -> str:
    """A job whose draws were scored ``rows`` (one row per prompt), stored like a real one."""
    job_id = uuid.uuid4().hex
    ids = ids or [f"q{i}" for i in range(len(rows))]
    spec = JobCreate.model_validate(
        {
            "model": "tiny",
            "prompts": [{"id": i, "prompt": f"question {i}", "reference": "x"} for i in ids],
            "sampling": {"n": len(rows[0])},
            "scorer": scorer or {"name": "rouge_l_recall"},
            **spec_fields,
        }
    )
    chunks = plan_chunks(job_id, spec, chunk_max_n=256, chunk_draws=4096)
    store.create_job(job_id, spec, chunks, tenant=tenant)
    for index, row in enumerate(rows):
        store.save_scores(job_id, index, dict(enumerate(row)))
    if status != JobStatus.queued:
        store.set_status(job_id, status, allowed_from=ACTIVE)
    if status == JobStatus.succeeded:
        store.save_results(
            job_id, build_results(store, store.get_job(job_id), status=JobStatus.succeeded)
        )
    return job_id


def binary_rows(counts: list[int], n: int) -> list[list[float]]:
    return [[1.0] * c + [0.0] * (n - c) for c in counts]


def test_compare_decides_per_prompt_and_family_wise(client: TestClient, store: Store) -> None:
    before = make_job(store, binary_rows([200, 150, 30, 40], 200))
    after = make_job(store, binary_rows([2, 150, 30, 0], 200))
    resp = client.post(
        "/v1/compare", json={"a": before, "b": after, "target": "p_full", "family": "holm"}
    )
    assert resp.status_code == 200, resp.text
    doc = resp.json()
    assert [p["decision"] for p in doc["prompts"]] == [
        "b lower", "no difference shown", "no difference shown", "b lower",
    ]  # fmt: skip
    assert doc["prompts"][0]["a"] == 1.0 and doc["prompts"][0]["b"] == 0.01
    assert doc["summary"]["b_lower"] == 2 and doc["summary"]["b_higher"] == 0
    assert doc["interval_alpha"] == pytest.approx(0.01 / 4)
    assert "at least 2" in doc["summary"]["statement"]
    for p in doc["prompts"]:
        assert p["lower"] <= p["difference"] <= p["upper"]
    mean = client.post("/v1/compare", json={"a": before, "b": after, "target": "mean"}).json()
    assert mean["target"] == "mean" and mean["leak_at"] is None
    leak = client.post(
        "/v1/compare", json={"a": before, "b": after, "target": "leak@k", "k": 5}
    ).json()
    assert leak["k"] == 5 and leak["prompts"][0]["a"] == 1.0


def test_compare_refuses_what_cannot_be_compared(client: TestClient, store: Store) -> None:
    a = make_job(store, binary_rows([1, 2], 50))
    other_ids = make_job(store, binary_rows([1, 2], 50), ids=["q0", "zz"])
    other_scorer = make_job(store, binary_rows([1, 2], 50), scorer={"name": "exact_match"})
    running = make_job(store, binary_rows([1, 2], 50), status=JobStatus.queued)
    foreign = make_job(store, binary_rows([1, 2], 50), tenant="team-b")

    def post(**body: Any) -> Any:
        return client.post("/v1/compare", json={"a": a, **body})

    r = post(b=other_ids)
    assert r.status_code == 422 and r.json()["error"]["param"] == "b"
    assert "zz" in r.json()["error"]["message"]
    r = post(b=other_scorer)
    assert r.status_code == 422 and "exact_match" in r.json()["error"]["message"]
    r = post(b=running)
    assert r.status_code == 409 and r.json()["error"]["param"] == "b"
    r = post(b=foreign)
    assert r.status_code == 404 and r.json()["error"]["param"] == "b"
    r = post(b=a, target="median")
    assert r.status_code == 422 and r.json()["error"]["param"] == "target"
    r = post(b=a, target="leak@k", k=0)
    assert r.status_code == 422 and r.json()["error"]["param"] == "k"
    r = post(b=a, family="sidak")
    assert r.status_code == 422 and r.json()["error"]["param"] == "family"


def test_plan_gives_459_and_prices_draws_with_measured_rate(
    client: TestClient, store: Store
) -> None:
    r = client.post("/v1/plan", json={"target": "certify", "tau": 0.01, "alpha": 0.01})
    assert r.status_code == 200, r.text
    assert r.json()["n"] == 459 and r.json()["cost"] is None
    record_generated(store.r, "tiny", draws=1000, tokens=5000, seconds=4.0)  # 250 draws/s
    r = client.post(
        "/v1/plan",
        json={"target": "certify", "tau": 0.01, "alpha": 0.01, "prompts": 100, "model": "tiny"},
    )
    cost = r.json()["cost"]
    assert cost["draws_per_s_per_worker"] == 250.0 and cost["workers"] == 1
    assert cost["expected_s"] == pytest.approx(459 * 100 / 250.0)
    r = client.post("/v1/plan", json={"target": "leak_at_k", "k": 10, "level": 0.1})
    assert r.status_code == 200 and r.json()["n"] > 0
    r = client.post("/v1/plan", json={"target": "mean_width", "width": 0.1})
    assert r.json()["n"] == 1060


def test_plan_bad_input_names_the_field(client: TestClient) -> None:
    r = client.post("/v1/plan", json={"target": "certify"})
    assert r.status_code == 422 and r.json()["error"]["param"] == "tau"
    r = client.post("/v1/plan", json={"target": "budget", "tau": 0.1})
    assert r.status_code == 422 and r.json()["error"]["param"] == "target"
    r = client.post("/v1/plan", json={"target": "certify", "tau": 0.1, "model": "nope"})
    assert r.status_code == 404 and r.json()["error"]["param"] == "model"


def test_bounds_route_has_leak_at_k_and_names_bad_k(client: TestClient) -> None:
    r = client.post("/v1/bounds", json={"scores": [[1.0, 0.0, 0.0, 0.0]], "k": [1, 2, 8]})
    assert r.status_code == 200, r.text
    row = r.json()["rows"][0]
    assert row["leak"]["c"] == 1
    assert [x["k"] for x in row["leak_at_k"]] == [1, 2, 8]
    assert row["leak_at_k"][0]["estimate"] == 0.25
    assert row["leak_at_k"][1]["estimate"] == pytest.approx(0.5)  # 1 - C(3,2)/C(4,2)
    assert row["leak_at_k"][2]["estimate"] is None  # k > n
    for k in (0, 100_001):
        r = client.post("/v1/bounds", json={"scores": [[1.0]], "k": [k]})
        assert r.status_code == 422 and r.json()["error"]["param"] == "k[0]", r.text


def test_job_results_carry_mean_leak_at_k_and_the_family_statement(store: Store) -> None:
    rng = np.random.default_rng(3)
    rows = [(rng.random(300) < p).astype(float).tolist() for p in (0.0, 0.002, 0.05, 0.2)]
    job = make_job(store, rows, family="holm", leak_tau=0.01, k=[1, 10])
    results = store.results(job)
    assert results is not None
    summary = results.summary
    assert [m.k for m in summary.leak_at_k] == [1, 10]
    assert summary.leaks is not None and summary.leaks.method == "holm"
    assert summary.leaks.leaking == ["q2", "q3"]  # P(leak) > 0.01 shown only where it is large
    assert "at least 2 of 4" in summary.leaks.statement
    m = summary.leak_at_k[1]
    assert m.lower <= (m.estimate or 0.0) <= m.upper


def test_plan_simulates_adaptive_stopping_at_a_stated_p(client: TestClient) -> None:
    body = {"target": "certify", "tau": 0.01, "alpha": 0.01, "assumed_p": 0.0, "round": 64}
    r = client.post("/v1/plan", json=body)
    assert r.status_code == 200, r.text
    adaptive = r.json()["adaptive"]
    # No draw ever leaks: every stream stops at the same round, below tau; the anytime-valid
    # sequence needs more draws than the fixed-n 459, which may not look at the data.
    assert adaptive["certified_share"] == 1.0 and adaptive["expected_n_se"] == 0.0
    assert adaptive["expected_n"] % 64 == 0 and adaptive["expected_n"] > 459
    leaky = client.post("/v1/plan", json={**body, "assumed_p": 0.05}).json()["adaptive"]
    assert leaky["certified_share"] == 0.0  # P(leak) = 5% is never certified below 1%
    r = client.post("/v1/plan", json={**body, "round": 1})
    assert r.status_code == 422 and r.json()["error"]["param"] == "round"
    r = client.post("/v1/plan", json={"target": "mean_width", "width": 0.1, "assumed_p": 0.1})
    assert r.status_code == 422 and r.json()["error"]["param"] == "assumed_p"


@pytest.mark.parametrize(
    ("field", "value", "param"),
    [("k", [10, 0], "k[1]"), ("k", [100_001], "k[0]"), ("family", "sidak", "family"),
     ("leak_tau", 1.0, "leak_tau"), ("leak_at", 1.5, "leak_at")],
)  # fmt: skip
def test_job_submission_names_bad_decision_fields(
    client: TestClient, field: str, value: Any, param: str
) -> None:
    body = {
        "model": "tiny",
        "prompts": [{"id": "q", "prompt": "question", "reference": "x"}],
        "sampling": {"n": 8},
        field: value,
    }
    r = client.post("/v1/jobs", json=body)
    assert r.status_code == 422 and r.json()["error"]["param"] == param, r.text
