"""Malformed input of every kind against the real gateway process: each answer is a 4xx in the one
error shape, and the stored data of another, finished job is unchanged (DUMP of every key before
and after)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from shared import keys
from shared.schemas import ChunkSlice, ChunkTask, JobCreate, JobStatus
from shared.store import ACTIVE, Store, connect
from tests.fixtures.reliability import AUTH_A, MODEL, ApiGateway

pytestmark = [pytest.mark.slow]

VALID = {
    "model": MODEL,
    "prompts": [{"id": "q", "prompt": "Say something", "reference": "something"}],
    "sampling": {"n": 4, "max_tokens": 4},
}
JSON = {"Content-Type": "application/json"}


def with_(path: str, value: Any) -> dict[str, Any]:
    """VALID with one field (dotted path, ints index lists) replaced."""
    body = json.loads(json.dumps(VALID))
    *head, last = [int(p) if p.isdigit() else p for p in path.split(".")]
    target: Any = body
    for part in head:
        target = target[part]
    target[last] = value
    return body


def raw(body: Any) -> bytes:
    return json.dumps(body).encode()


# (name, body bytes, headers). Every one must be answered 4xx with the error shape.
CASES: list[tuple[str, bytes, dict[str, str]]] = [
    # Broken JSON
    ("truncated", b'{"model": "tiny", "prompts": [', JSON),
    ("single quotes", b"{'model': 'tiny'}", JSON),
    ("trailing comma", b'{"model": "tiny",}', JSON),
    ("bare word", b"tiny", JSON),
    ("invalid utf-8", b'{"model": "\xff\xfe"}', JSON),
    ("two documents", raw(VALID) + raw(VALID), JSON),
    # Wrong types
    ("model is a number", raw(with_("model", 5)), JSON),
    ("prompts is a string", raw(with_("prompts", "Say something")), JSON),
    ("prompt is a list", raw(with_("prompts.0.prompt", ["a"])), JSON),
    ("n is a string", raw(with_("sampling.n", "10")), JSON),
    ("n is a float", raw(with_("sampling.n", 1.5)), JSON),
    ("n is a bool", raw(with_("sampling.n", True)), JSON),
    ("n is null", raw(with_("sampling.n", None)), JSON),
    ("sampling is a list", raw(with_("sampling", [4, 4])), JSON),
    ("prompts hold numbers", raw(with_("prompts", [1, 2])), JSON),
    # Sizes
    ("prompt over 100k chars", raw(with_("prompts.0.prompt", "x" * 100_001)), JSON),
    ("id over 256 chars", raw(with_("prompts.0.id", "i" * 257)), JSON),
    ("body over the limit", raw(with_("prompts.0.prompt", "x" * 4_100_000)), JSON),
    (
        "too many prompts",
        raw(with_("prompts", [{"id": str(i), "prompt": "p"} for i in range(1001)])),
        JSON,
    ),
    ("no prompts", raw(with_("prompts", [])), JSON),
    ("empty prompt", raw(with_("prompts.0.prompt", "")), JSON),
    # Unicode oddities: lone surrogates cannot be stored as UTF-8, so they are invalid input;
    # NUL, RTL marks and the like are valid text and are rejected here only for the field they
    # sit in (an unknown model, an unknown field, a repeated id).
    ("high surrogate", raw(with_("prompts.0.prompt", "s")).replace(b'"s"', b'"\\ud800"'), JSON),
    ("lone low surrogate", raw(with_("prompts.0.id", "a")).replace(b'"a"', b'"\\udfff"'), JSON),
    ("surrogate in model", raw(with_("model", "m")).replace(b'"m"', b'"\\udbff"'), JSON),
    ("NUL in model name", raw(with_("model", "tiny\u0000")), JSON),
    ("RTL override in model name", raw(with_("model", "\u202etiny")), JSON),
    ("NUL in an unknown field", raw({**VALID, "\u0000": 1}), JSON),
    ("zero-width id repeats", raw(with_("prompts", [VALID["prompts"][0]] * 2)), JSON),
    # Numbers
    ("negative n", raw(with_("sampling.n", -1)), JSON),
    ("zero n", raw(with_("sampling.n", 0)), JSON),
    ("enormous n", raw(with_("sampling.n", 10**30)), JSON),
    ("n with 5000 digits", b'{"model": "tiny", "sampling": {"n": ' + b"9" * 5000 + b"}}", JSON),
    ("negative max_tokens", raw(with_("sampling.max_tokens", -5)), JSON),
    ("enormous max_tokens", raw(with_("sampling.max_tokens", 2**63)), JSON),
    ("seed above 2^63-1", raw(with_("sampling.seed", 2**63)), JSON),
    ("negative seed", raw(with_("sampling.seed", -1)), JSON),
    ("alpha is NaN", raw(VALID)[:-1] + b', "alpha": NaN}', JSON),
    ("alpha is Infinity", raw(VALID)[:-1] + b', "alpha": Infinity}', JSON),
    ("alpha 1e999", raw(VALID)[:-1] + b', "alpha": 1e999}', JSON),
    ("temperature -1", raw(with_("sampling.temperature", -1)), JSON),
    ("top_p 0", raw(with_("sampling.top_p", 0)), JSON),
    ("threshold 2", raw({**VALID, "thresholds": [2.0]}), JSON),
    # Unknown fields
    ("unknown top-level field", raw({**VALID, "priority": "high"}), JSON),
    ("unknown sampling field", raw(with_("sampling", {"n": 4, "beam_width": 2})), JSON),
    ("unknown prompt field", raw(with_("prompts.0", {"id": "q", "prompt": "p", "x": 1})), JSON),
    # Content types and empty bodies
    ("text/plain", raw(VALID), {"Content-Type": "text/plain"}),
    ("form encoded", b"model=tiny", {"Content-Type": "application/x-www-form-urlencoded"}),
    ("no content type", raw(VALID), {"Content-Type": ""}),
    ("empty body", b"", JSON),
    ("whitespace body", b"   \n ", JSON),
    ("null body", b"null", JSON),
    # Arrays instead of objects, deep nesting
    ("array body", raw([VALID]), JSON),
    ("array of nothing", b"[]", JSON),
    ("string body", b'"hello"', JSON),
    ("nested arrays 100k deep", b"[" * 100_000 + b"]" * 100_000, JSON),
    ("nested objects 50k deep", b'{"a":' * 50_000 + b"1" + b"}" * 50_000, JSON),
    ("deep unknown field", raw(VALID)[:-1] + b', "x": ' + b"[" * 9999 + b"]" * 9999 + b"}", JSON),
]


@pytest.fixture(scope="module")
def client(api_gateway: ApiGateway) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api_gateway.base, headers=AUTH_A, timeout=60) as c:
        yield c


@pytest.fixture(scope="module")
def finished_job(api_gateway: ApiGateway) -> str:
    """A succeeded job with stored draws and scores, written as the workers write them."""
    store = Store(connect(api_gateway.redis_url), retention_s=3600)
    job_id = "f" * 32
    spec = JobCreate.model_validate(VALID)
    draws = [ChunkSlice(prompt_index=0, start=0, count=4)]
    chunk = ChunkTask(job_id=job_id, chunk_id=0, slices=draws)
    store.create_job(job_id, spec, [chunk], tenant="team-a")
    store.save_texts(job_id, 0, {i: f"draw {i} \u202e\u0000" for i in range(4)})
    store.save_scores(job_id, 0, {i: i / 4 for i in range(4)})
    store.mark_chunk_scored(job_id, 0)
    store.set_status(job_id, JobStatus.succeeded, allowed_from=ACTIVE)
    return job_id


def snapshot(api_gateway: ApiGateway, job_id: str) -> dict[str, Any]:
    r = connect(api_gateway.redis_url)
    names = [keys.job(job_id), *r.scan_iter(keys.job_keys_pattern(job_id))]
    dumps = {n: r.dump(n) for n in names}
    assert len(dumps) >= 4
    return dumps


def assert_error_shape(resp: httpx.Response, name: str) -> None:
    assert 400 <= resp.status_code < 500, (name, resp.status_code, resp.text[:300])
    body = resp.json()
    assert set(body) == {"error"}, (name, body)
    assert isinstance(body["error"]["code"], str) and body["error"]["code"], name
    assert isinstance(body["error"]["message"], str) and body["error"]["message"], name


def test_malformed_job_submissions(
    client: httpx.Client, api_gateway: ApiGateway, finished_job: str, figures: dict[str, Any]
) -> None:
    before = snapshot(api_gateway, finished_job)
    statuses: dict[str, int] = {}
    for name, body, headers in CASES:
        for path in ("/v1/jobs", "/v1/bounds"):
            resp = client.post(path, content=body, headers=headers)
            assert_error_shape(resp, f"{name} -> {path}")
            statuses[f"{resp.status_code}"] = statuses.get(f"{resp.status_code}", 0) + 1
    assert snapshot(api_gateway, finished_job) == before
    assert client.get("/healthz").status_code == 200
    figures["malformed"] = {"requests": 2 * len(CASES), "by_status": statuses}


@pytest.mark.parametrize(
    "path",
    [
        "/v1/jobs/{id}/samples?prompt_id=q&offset=-1",
        "/v1/jobs/{id}/samples?prompt_id=q&limit=100000000000000000000000",
        "/v1/jobs/{id}/samples?prompt_id=q&limit=abc",
        "/v1/jobs/{id}/samples?prompt_id=%00",
        "/v1/jobs/{id}/samples?prompt_id=%ED%A0%80",
        "/v1/jobs/{id}/samples",
        "/v1/jobs/%ED%A0%80",
        "/v1/jobs/%00",
        "/v1/jobs/" + "a" * 5000,
        "/v1/jobs/{id}/results/../../../../etc/passwd",
        "/v1/jobs/{id}?purge=maybe",
    ],
)
def test_malformed_paths_and_queries(
    client: httpx.Client, api_gateway: ApiGateway, finished_job: str, path: str
) -> None:
    before = snapshot(api_gateway, finished_job)
    url = path.replace("{id}", finished_job)
    for method in ("GET", "DELETE"):
        resp = client.request(method, url)
        if resp.status_code < 400:  # a read that ignores what it does not use
            assert method == "GET", (url, resp.text)
            continue
        assert_error_shape(resp, f"{method} {url}")
    assert snapshot(api_gateway, finished_job) == before


def test_odd_but_valid_unicode_is_stored_exactly(
    client: httpx.Client, api_gateway: ApiGateway
) -> None:
    """NUL, RTL marks, combining characters and astral code points are valid text: a job with
    them is accepted and its prompt is stored exactly."""
    prompt = "a\u0000b \u202eevil\u202c \u200d\ufeff e\u0301 \U0001f600 \u00a0"
    resp = client.post("/v1/jobs", json=with_("prompts.0.prompt", prompt))
    assert resp.status_code == 202, resp.text
    job_id = resp.json()["id"]
    stored = connect(api_gateway.redis_url).hget(keys.job(job_id), "spec")
    assert json.loads(stored)["prompts"][0]["prompt"] == prompt
    assert client.delete(f"/v1/jobs/{job_id}?purge=true").status_code == 204
