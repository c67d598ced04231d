from fastapi.testclient import TestClient

from services.gateway.main import create_app
from shared.config import Settings


def test_healthz_and_readyz(client: TestClient) -> None:
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200


def test_readyz_is_503_without_redis() -> None:
    app = create_app(Settings(redis_url="redis://127.0.0.1:1/0"))
    with TestClient(app) as c:
        assert c.get("/healthz").status_code == 200
        resp = c.get("/readyz")
        assert resp.status_code == 503
        assert resp.json()["error"]["code"] == "unavailable"


def test_models_lists_live_workers(client: TestClient) -> None:
    models = client.get("/v1/models").json()["models"]
    assert models == [
        {"name": "tiny", "engine": "fake 0 (test)", "workers": 1, "chat_template": False}
    ]


def test_openapi_is_served(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert "/v1/jobs" in spec["paths"] and "/v1/bounds" in spec["paths"]
