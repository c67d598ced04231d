"""Submit and poll are the first routes tried (services/gateway/main.py, HOT_ROUTES), and moving
them shadows nothing: the other methods and sub-paths of theirs still reach their own routes."""

from __future__ import annotations

from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from services.gateway.main import HOT_ROUTES


def test_submit_and_poll_are_tried_first(client: TestClient) -> None:
    first = client.app.router.routes[: len(HOT_ROUTES)]  # type: ignore[attr-defined]
    assert all(isinstance(r, APIRoute) for r in first)
    assert [(sorted(r.methods), r.path) for r in first] == [
        ([method], path) for method, path in HOT_ROUTES
    ]


def test_routes_behind_them_still_answer(client: TestClient) -> None:
    body = {
        "model": "tiny",
        "prompts": [{"id": "q", "prompt": "p", "reference": "r"}],
        "sampling": {"n": 4},
    }
    job_id = client.post("/v1/jobs", json=body).json()["id"]
    assert client.get("/v1/jobs").json()["jobs"][0]["id"] == job_id
    assert client.get(f"/v1/jobs/{job_id}").json()["status"] == "queued"
    assert client.get(f"/v1/jobs/{job_id}/spec").status_code == 200
    assert client.delete(f"/v1/jobs/{job_id}").status_code in (200, 202, 204)
    assert client.put(f"/v1/jobs/{job_id}").status_code == 405
