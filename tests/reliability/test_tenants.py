"""Tenant isolation against the real gateway process with API keys (the full route matrix is in
tests/services/gateway/test_auth.py, through the same app in process)."""

from __future__ import annotations

import httpx
import pytest

from tests.fixtures.reliability import AUTH_A, AUTH_B, MODEL, ApiGateway

pytestmark = [pytest.mark.slow]

BODY = {
    "model": MODEL,
    "prompts": [{"id": "q", "prompt": "p", "reference": "r"}],
    "sampling": {"n": 2, "max_tokens": 2},
}


def test_keys_and_tenants_on_the_real_gateway(api_gateway: ApiGateway) -> None:
    with httpx.Client(base_url=api_gateway.base, timeout=30) as c:
        assert c.post("/v1/jobs", json=BODY).status_code == 401
        wrong = {"Authorization": "Bearer nope"}
        assert c.post("/v1/jobs", json=BODY, headers=wrong).status_code == 401
        job_id = c.post("/v1/jobs", json=BODY, headers=AUTH_A).json()["id"]
        for method, path in [
            ("GET", f"/v1/jobs/{job_id}"),
            ("GET", f"/v1/jobs/{job_id}/results"),
            ("GET", f"/v1/jobs/{job_id}/samples?prompt_id=q"),
            ("DELETE", f"/v1/jobs/{job_id}"),
            ("DELETE", f"/v1/jobs/{job_id}?purge=true"),
        ]:
            resp = c.request(method, path, headers=AUTH_B)
            assert resp.status_code == 404, (method, path, resp.text)
            assert resp.json()["error"]["code"] == "not_found"
        assert c.get(f"/v1/jobs/{job_id}", headers=AUTH_A).json()["status"] == "queued"
        assert c.delete(f"/v1/jobs/{job_id}?purge=true", headers=AUTH_A).status_code == 204
