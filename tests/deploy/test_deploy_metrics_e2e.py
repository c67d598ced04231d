"""GET /metrics on a running gateway while a real job runs: the counters move.

Real processes (redis-server, the gateway under uvicorn, a vLLM CPU sampler on the tiny model,
a scorer), started by the same fixture as tests/e2e.
"""

from __future__ import annotations

import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from shared import keys
from tests.fixtures.stacks import Stack, requires_vllm


def _gateway_serves_metrics() -> bool:
    """Whether create_app mounts GET /metrics (checked before paying for a vLLM engine)."""
    from services.gateway.main import create_app
    from shared.config import Settings

    app = create_app(Settings(redis_url="redis://127.0.0.1:1/0"))  # connects lazily
    return "/metrics" in {getattr(route, "path", None) for route in app.routes}


requires_metrics_route = pytest.mark.skipif(
    not _gateway_serves_metrics(),
    reason="create_app does not mount services.gateway.routes.metrics.router yet",
)

pytestmark = [pytest.mark.slow, pytest.mark.vllm, requires_vllm, requires_metrics_route]

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(client: httpx.Client) -> Samples:
    response = client.get("/metrics")
    assert response.status_code == 200, response.text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def get(found: Samples, name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


def test_counters_move_during_a_job(stack: Stack) -> None:  # noqa: F811
    model = stack.model
    prompts = [
        {"id": f"p{i}", "prompt": f"Tell me about day {i} of", "reference": "x"} for i in range(4)
    ]
    body = {
        "model": model,
        "prompts": prompts,
        "sampling": {"n": 256, "temperature": 1.0, "max_tokens": 16},
        "scorer": {"name": "rouge_l_recall"},
    }
    with stack.client() as c:
        before = scrape(c)
        response = c.post("/v1/jobs", json=body)
        assert response.status_code == 202, response.text
        job_id = response.json()["id"]
        during = scrape(c)
        # The job is queued or running: 1024 draws take the CPU engine well over a scrape.
        assert get(during, "probeval_jobs", status="queued") + get(
            during, "probeval_jobs", status="running"
        ) >= 1 + get(before, "probeval_jobs", status="queued") + get(
            before, "probeval_jobs", status="running"
        )
        view = stack.wait_for_job(job_id)
        assert view["status"] == "succeeded", view
        # Scorers record their counts before the job is marked succeeded; allow a scrape or two.
        deadline = time.monotonic() + 10
        while True:
            after = scrape(c)
            moved = get(after, "probeval_draws_scored_total", model=model) - get(
                before, "probeval_draws_scored_total", model=model
            )
            if moved >= 1024 or time.monotonic() > deadline:
                break
            time.sleep(0.5)

    def delta(name: str, **labels: str) -> float:
        return get(after, name, **labels) - get(before, name, **labels)

    assert get(after, "probeval_redis_up") == 1
    assert delta("probeval_draws_generated_total", model=model) >= 1024
    # Every draw has at least one token and at most max_tokens.
    assert 1024 <= delta("probeval_tokens_generated_total", model=model) <= 1024 * 16 + 16 * 4
    assert delta("probeval_draws_scored_total", model=model) >= 1024
    assert delta("probeval_jobs_finished_total", status="succeeded") == 1
    assert get(after, "probeval_jobs", status="queued") == 0
    assert get(after, "probeval_jobs", status="running") == 0
    assert get(after, "probeval_sampler_workers", model=model) == 1
    assert get(after, "probeval_scorer_workers") >= 1
    for queue in (keys.sample_queue(model), keys.SCORE_QUEUE):
        assert (("probeval_queue_depth", (("queue", queue),))) in after
        assert get(after, "probeval_queue_depth", queue=queue) == 0
    count = "probeval_http_request_duration_seconds_count"
    assert delta(count, method="POST", route="/v1/jobs", status="202") == 1
    assert delta(count, method="GET", route="/v1/jobs/{job_id}", status="200") >= 1
