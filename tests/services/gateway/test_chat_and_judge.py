"""Chat prompts and the judge scorer through the in-process pipeline (fake engine, real Redis):
submit-time checks, one batched judge call per chunk, scores, rendered prompts and judge info.
The real-process version with vLLM and HF reference values is tests/e2e/test_alignment.py."""

from __future__ import annotations

import hashlib
import math
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient
from rq import SimpleWorker
from rq.serializers import JSONSerializer
from tokenizers import Tokenizer, models, pre_tokenizers

from shared import keys
from shared.config import Settings
from shared.queues import sample_queue, score_queue
from shared.schemas import ModelCapabilities
from shared.scorers.judge import template_sha256
from shared.store import Store
from tests.fixtures.fakes import FakeEngine
from tests.fixtures.pipeline import register_model, worker_runtime
from tests.services.gateway.test_errors import assert_error
from workers import runtime

CHAT = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "capital?"}]
JUDGE = {
    "name": "judge",
    "judge_model": "judge",
    "template": "Judge this: {response}",
    "labels": {"paris": 1.0, "london": 0.0},
}


def word_tokenizer_json() -> str:
    vocab = {"[UNK]": 0, "yes": 1, "no": 2, "paris": 3, "london": 4, "please": 5}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return str(tok.to_str())


def register(store: Store, model: str, *, chat: bool, tokenizer: str | None = None) -> None:
    register_model(store, model)
    sha = hashlib.sha256(tokenizer.encode()).hexdigest() if tokenizer else None
    store.register_capabilities(
        model, ModelCapabilities(chat_template=chat, judging=True, tokenizer_sha256=sha), tokenizer
    )


def body(**overrides: Any) -> dict[str, Any]:
    b: dict[str, Any] = {
        "model": "tiny",
        "prompts": [{"id": "c0", "messages": CHAT}, {"id": "r1", "prompt": "raw question"}],
        "sampling": {"n": 100, "max_tokens": 4, "seed": 3},
        "scorer": JUDGE,
    }
    b.update(overrides)
    return b


def expected(text: str) -> float:
    """The judge score of a draw by hand: FakeEngine gives log P(label) = -1 when the label
    occurs in the judge prompt ("Judge this: " + draw), else -3; value paris 1, london 0."""
    lp = {t: (-1.0 if t in f"Judge this: {text}" else -3.0) for t in ("paris", "london")}
    return math.exp(lp["paris"]) / (math.exp(lp["paris"]) + math.exp(lp["london"]))


def drain_all(rt: runtime.Runtime, models_: list[str]) -> None:
    """Every sample queue of ``models_`` (the judge's too) and the score queue, until empty."""
    conn = rt.rq
    queues = [*(sample_queue(conn, m) for m in models_), score_queue(conn)]
    job_class = runtime.RuntimeJob.bound_to(rt)
    for _ in range(20):
        SimpleWorker(queues, connection=conn, serializer=JSONSerializer, job_class=job_class).work(
            burst=True
        )
        if not any(conn.llen(keys.rq_queue_list(q.name)) for q in queues):
            return


def nothing_enqueued(r: redis.Redis) -> bool:
    return r.zcard(keys.JOBS_INDEX) == 0 and not any(
        r.llen(keys.rq_queue_list(keys.sample_queue(m))) for m in ("tiny", "judge")
    )


def test_judged_chat_job_scores_every_draw_in_one_call_per_chunk(
    client: TestClient, settings: Settings, store: Store
) -> None:
    register(store, "tiny", chat=True)
    register(store, "judge", chat=False, tokenizer=word_tokenizer_json())
    engine = FakeEngine()
    rt = worker_runtime(settings, engine, "tiny")
    resp = client.post("/v1/jobs", json=body())
    assert resp.status_code == 202, resp.text
    job_id = resp.json()["id"]
    drain_all(rt, ["tiny", "judge"])
    assert client.get(f"/v1/jobs/{job_id}").json()["status"] == "succeeded"

    rendered = engine.render_chat_text(CHAT)
    # The sampler was given the rendered chat, with the messages alongside.
    chat_requests = [r for call in engine.calls for r in call if r.messages is not None]
    assert chat_requests and all(r.prompt == rendered for r in chat_requests)
    # One judge call per chunk (the greedy chunk and the sampling chunks), all its draws at once.
    chunks = store.chunk_plan(job_id)
    assert len(engine.label_calls) == len(chunks)
    for call, chunk in zip(engine.label_calls, chunks, strict=True):
        assert len(call) == sum(sl.count for sl in chunk.slices)

    results = client.get(f"/v1/jobs/{job_id}/results").json()
    assert results["judge"] == {
        "judge_model": "judge",
        "template_sha256": template_sha256(JUDGE["template"]),  # type: ignore[arg-type]
        "labels": {"paris": 1.0, "london": 0.0},
    }
    assert [p["rendered_prompt"] for p in results["prompts"]] == [rendered, "raw question"]

    for prompt in results["prompts"]:
        page = client.get(
            f"/v1/jobs/{job_id}/samples", params={"prompt_id": prompt["id"], "limit": 1000}
        ).json()
        assert page["rendered_prompt"] == prompt["rendered_prompt"]
        assert len(page["samples"]) == 100
        for s in page["samples"]:
            assert s["score"] == pytest.approx(expected(s["text"]), abs=1e-12)
        assert prompt["greedy"]["score"] == pytest.approx(expected(prompt["greedy"]["text"]))


@pytest.mark.parametrize(
    ("overrides", "param"),
    [
        ({"prompts": [{"id": "a", "prompt": "x", "messages": CHAT}]}, "prompts[0]"),
        ({"prompts": [{"id": "a"}]}, "prompts[0]"),
        (
            {"prompts": [{"id": "a", "messages": [{"role": "robot", "content": "x"}]}]},
            "prompts[0].messages[0].role",
        ),
        ({"prompts": [{"id": "a", "messages": []}]}, "prompts[0].messages"),
        ({"scorer": {**JUDGE, "labels": {"yes": 1.0, "yes please": 0.0}}}, "scorer.labels"),
        ({"scorer": {**JUDGE, "template": "{question}: {response}"}}, "scorer.template"),
        ({"scorer": {**JUDGE, "template": "{prompt}"}}, "scorer.template"),
        ({"scorer": {**JUDGE, "template": "{reference} {response}"}}, "prompts[0].reference"),
        ({"scorer": {"name": "no_such_scorer"}}, "scorer.name"),
    ],
)
def test_bad_chat_and_judge_input_is_422_naming_the_field(
    client: TestClient,
    store: Store,
    redis_client: redis.Redis,
    overrides: dict[str, Any],
    param: str,
) -> None:
    register(store, "tiny", chat=True)
    register(store, "judge", chat=False, tokenizer=word_tokenizer_json())
    err = assert_error(client.post("/v1/jobs", json=body(**overrides)), 422, param=param)
    if param == "scorer.name":
        for name in ("rouge_l_recall", "regex", "judge"):
            assert name in err["message"]
    assert nothing_enqueued(redis_client)


def test_messages_to_a_model_without_chat_template_is_422(
    client: TestClient, store: Store, redis_client: redis.Redis
) -> None:
    register(store, "tiny", chat=False)
    register(store, "judge", chat=False)
    err = assert_error(client.post("/v1/jobs", json=body()), 422, param="prompts[0].messages")
    assert "no chat template" in err["message"]
    assert nothing_enqueued(redis_client)
    # The registry's view of the model says so too.
    models_ = {m["name"]: m for m in client.get("/v1/models").json()["models"]}
    assert models_["tiny"]["chat_template"] is False


def test_rescore_with_a_judge_judges_the_stored_draws_of_a_chat_job(
    client: TestClient, settings: Settings, store: Store
) -> None:
    register(store, "tiny", chat=True)
    register(store, "judge", chat=False, tokenizer=word_tokenizer_json())
    engine = FakeEngine()
    rt = worker_runtime(settings, engine, "tiny")
    source = client.post(
        "/v1/jobs", json=body(scorer={"name": "regex", "pattern": "paris"})
    ).json()["id"]
    drain_all(rt, ["tiny", "judge"])
    resp = client.post(f"/v1/jobs/{source}/rescore", json={"scorer": JUDGE})
    assert resp.status_code == 202, resp.text
    new = resp.json()["id"]
    drain_all(rt, ["tiny", "judge"])
    assert client.get(f"/v1/jobs/{new}").json()["status"] == "succeeded"
    results = client.get(f"/v1/jobs/{new}/results").json()
    assert results["judge"]["judge_model"] == "judge"
    # The chat prompt's rendering travelled with the draws.
    assert results["prompts"][0]["rendered_prompt"] == engine.render_chat_text(CHAT)
    page = client.get(f"/v1/jobs/{new}/samples", params={"prompt_id": "c0", "limit": 5}).json()
    assert page["samples"]
    for s in page["samples"]:
        assert s["score"] == pytest.approx(expected(s["text"]), abs=1e-12)


def test_unserved_judge_model_is_404_naming_it(client: TestClient, store: Store) -> None:
    register(store, "tiny", chat=True)
    body_ = body(scorer={**JUDGE, "judge_model": "nobody"})
    err = assert_error(client.post("/v1/jobs", json=body_), 404, param="scorer.judge_model")
    assert "no live sampler serves 'nobody'" in err["message"]


def test_a_judge_stage_that_cannot_run_fails_the_job_and_queues_its_end(
    client: TestClient, settings: Settings, store: Store, redis_client: redis.Redis
) -> None:
    """Failed by the judge stage, the job's end goes through the one place that queues its
    webhook and its archiving (shared.callbacks.set_status_and_notify)."""
    from shared.errors import InvalidInput

    class LabelsRefused(FakeEngine):
        def label_logprobs(self, prompts: Any, labels: Any) -> Any:
            raise InvalidInput(
                "scorer.labels: two labels share a first token", param="scorer.labels"
            )

    register(store, "tiny", chat=True)
    register(store, "judge", chat=False, tokenizer=word_tokenizer_json())
    rt = worker_runtime(settings, LabelsRefused(), "tiny")
    job_id = client.post("/v1/jobs", json=body()).json()["id"]
    drain_all(rt, ["tiny", "judge"])
    view = client.get(f"/v1/jobs/{job_id}").json()
    assert view["status"] == "failed" and view["error"]["param"] == "scorer.labels"
    assert redis_client.hget(keys.job(job_id), "archive_queued") == "1"
    assert redis_client.exists(f"rq:job:{keys.rq_archive_id(job_id)}")
