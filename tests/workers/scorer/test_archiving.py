"""The archive in process: gateway (TestClient), RQ burst workers with a fake engine, a real
redis-server, and Parquet files in a temporary folder. What a reader gets before and after a job
moves to its archive is compared byte for byte; the crash points of the archiving task are
reproduced by running its steps one by one (the kill -9 of a real worker: tests/e2e/test_archive.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient
from rq import SimpleWorker
from rq.serializers import JSONSerializer

from shared import keys
from shared.archive import record_archive, write_archive
from shared.archive_files import DRAWS, MANIFEST, Manifest
from shared.archive_retention import sweep_expired
from shared.config import Settings
from shared.draws import JobDraws
from shared.queues import archive_queue, enqueue_archive
from shared.store import Store
from tests.fixtures.fakes import FakeEngine
from tests.fixtures.pipeline import cancel_after_first_chunk, drain, worker_runtime
from workers import runtime
from workers.scorer.archiving import archive_job, results_to_archive


@pytest.fixture()
def settings(redis_url: str, tmp_path: Path) -> Settings:
    return Settings(
        redis_url=redis_url,
        chunk_max_n=64,
        chunk_draws=128,
        archive_url=str(tmp_path / "archive"),
        archive_after_s=0,
    )


def submit(client: TestClient, **overrides: Any) -> str:
    body: dict[str, Any] = {
        "model": "tiny",
        "prompts": [
            {"id": f"q{i}", "prompt": f"question {i}", "reference": "the capital is paris"}
            for i in range(3)
        ]
        + [
            {
                "id": "chat",
                "messages": [{"role": "user", "content": "capital of France?"}],
                "reference": "paris",
            }
        ],
        "sampling": {"n": 100, "max_tokens": 4},
        "thresholds": [0.25, 0.5],
        "quantiles": [0.5, 0.9],
    }
    body.update(overrides)
    resp = client.post("/v1/jobs", json=body)
    assert resp.status_code == 202, resp.text
    return str(resp.json()["id"])


def run_archiving(rt: runtime.Runtime) -> None:
    SimpleWorker(
        [archive_queue(rt.rq)],
        connection=rt.rq,
        serializer=JSONSerializer,
        job_class=runtime.RuntimeJob.bound_to(rt),
    ).work(burst=True)


def everything(client: TestClient, job_id: str, *, results: bool = True) -> dict[str, bytes]:
    """Every response a reader can get of the job, as bytes."""
    out: dict[str, bytes] = {}
    prompts = ["q0", "q1", "q2", "chat"]
    for p in prompts:
        for offset, limit in ((0, 100), (0, 7), (37, 20), (95, 50), (100, 5), (0, 1000)):
            resp = client.get(
                f"/v1/jobs/{job_id}/samples",
                params={"prompt_id": p, "offset": offset, "limit": limit},
            )
            out[f"samples {p} {offset} {limit}"] = resp.content
        out[f"scores {p}"] = client.get(
            f"/v1/jobs/{job_id}/scores", params={"prompt_id": p}
        ).content
    out["jsonl"] = client.get(f"/v1/jobs/{job_id}/samples.jsonl").content
    out["parquet draws"] = client.get(f"/v1/jobs/{job_id}/export.parquet").content
    if results:
        out["results"] = client.get(f"/v1/jobs/{job_id}/results").content
        out["csv"] = client.get(f"/v1/jobs/{job_id}/results.csv").content
        out["parquet results"] = client.get(
            f"/v1/jobs/{job_id}/export.parquet", params={"table": "results"}
        ).content
        out["report"] = client.get(f"/v1/jobs/{job_id}/report").content
    return out


def draw_keys_left(r: redis.Redis, job_id: str) -> list[str]:
    names = [str(k) for k in r.scan_iter(match=keys.job_keys_pattern(job_id), count=1000)]
    return sorted(names)


def test_a_finished_job_reads_byte_for_byte_the_same_from_its_archive(
    client: TestClient, settings: Settings, store: Store, redis_client: redis.Redis
) -> None:
    rt = worker_runtime(settings, FakeEngine(), "tiny")
    job_id = submit(client)
    drain(rt)
    assert store.get_job(job_id).status.value == "succeeded"
    before = everything(client, job_id)
    assert json.loads(before["samples chat 0 7"])["rendered_prompt"]
    assert len(draw_keys_left(redis_client, job_id)) >= 8

    run_archiving(rt)
    job = store.get_job(job_id)
    assert job.archive == str(Path(settings.archive_url) / job_id)
    assert draw_keys_left(redis_client, job_id) == []
    after = everything(client, job_id)
    assert after.keys() == before.keys()
    for name in before:
        assert after[name] == before[name], name
    # The record says what was archived; the manifest agrees.
    record = redis_client.hgetall(keys.job(job_id))
    manifest = Manifest.from_json((Path(job.archive) / MANIFEST).read_text())
    assert int(record["archive_draws"]) == manifest.draws == 400
    assert record["archive_scores_sha256"] == manifest.scores_sha256
    assert manifest.draws_per_prompt == [100] * 4
    assert store.chunk_ids(job_id) == [int(c) for c in record["chunk_ids"].split(",")]
    assert len(store.chunk_ids(job_id)) == job.chunks_total
    # Run again (an RQ retry, a second enqueue): nothing changes, no second archive.
    files = sorted(p.name for p in Path(job.archive).iterdir())
    enqueue_archive(rt.rq, job_id, settings, delay_s=0)
    run_archiving(rt)
    assert sorted(p.name for p in Path(job.archive).iterdir()) == files
    assert sorted(p.name for p in Path(settings.archive_url).iterdir()) == [job_id]
    assert everything(client, job_id) == before


def test_a_crash_before_the_record_or_before_the_delete_is_finished_by_the_rerun(
    client: TestClient, settings: Settings, store: Store, redis_client: redis.Redis
) -> None:
    rt = worker_runtime(settings, FakeEngine(seed=3), "tiny")
    a, b = submit(client), submit(client)
    drain(rt)
    redis_client.delete(keys.rq_queue_list(keys.ARCHIVE_QUEUE))  # run the steps by hand
    before = {j: everything(client, j) for j in (a, b)}

    # a: files written and moved into place, then the worker died before recording them.
    job = store.get_job(a)
    write_archive(store, job, results_to_archive(store, job), settings.archive_url, {})
    (Path(settings.archive_url) / a / ".tmp-deadbeef").mkdir()  # and a crashed attempt's leftovers
    assert store.get_job(a).archive is None
    assert everything(client, a) == before[a]  # still read from Redis
    # b: recorded, then the worker died before deleting the Redis copy.
    job = store.get_job(b)
    location, manifest = write_archive(
        store, job, results_to_archive(store, job), settings.archive_url, {}
    )
    assert record_archive(store, b, location, manifest) == 1
    assert record_archive(store, b, location, manifest) == 0  # compare-and-set: once
    assert draw_keys_left(redis_client, b)
    assert everything(client, b) == before[b]  # from the archive already

    for j in (a, b):
        assert archive_job(rt, j)["archived"] == str(Path(settings.archive_url) / j)
        assert draw_keys_left(redis_client, j) == []
        assert everything(client, j) == before[j]
        folder = Path(settings.archive_url) / j
        assert sorted(p.name for p in folder.iterdir()) == sorted(
            [DRAWS, "prompts.parquet", "results.parquet", MANIFEST]
        )


def test_a_reader_that_started_on_redis_switches_to_the_archive(
    client: TestClient, settings: Settings, store: Store
) -> None:
    rt = worker_runtime(settings, FakeEngine(), "tiny")
    job_id = submit(client)
    drain(rt)
    draws = JobDraws(store, store.get_job(job_id))  # opened while the job is in Redis
    first = draws.page(1, list(range(10)))
    assert draws.archived is None
    run_archiving(rt)
    assert draws.page(1, list(range(10))) == first
    assert draws.archived is not None
    assert draws.count(1) == 100


def test_a_cancelled_job_archives_its_partial_results(
    client: TestClient, settings: Settings, store: Store, redis_client: redis.Redis
) -> None:
    rt = worker_runtime(settings, FakeEngine(), "tiny")
    job_id = submit(client, greedy=False)
    cancel_after_first_chunk(client, rt, store, job_id)
    before = everything(client, job_id)
    assert json.loads(before["results"])["partial"] is True
    run_archiving(rt)
    assert store.get_job(job_id).archive is not None
    assert draw_keys_left(redis_client, job_id) == []
    assert everything(client, job_id) == before


def test_a_cancelled_job_waits_for_its_running_chunks(
    client: TestClient, settings: Settings, store: Store
) -> None:
    rt = worker_runtime(settings, FakeEngine(), "tiny")
    job_id = submit(client, greedy=False)
    assert client.delete(f"/v1/jobs/{job_id}").status_code == 200
    # A chunk taken by a worker before the cancel is still running (started in RQ).
    rq_id = keys.rq_chunk_id(job_id, store.chunk_plan(job_id)[0].chunk_id, "sample")
    from rq.job import Job

    job = Job.fetch(rq_id, connection=rt.rq, serializer=JSONSerializer)
    job.set_status("started")
    with pytest.raises(Exception, match="still queued or running"):
        archive_job(rt, job_id)
    assert store.get_job(job_id).archive is None


def test_rescore_of_an_archived_job_reads_its_draws_from_the_archive(
    client: TestClient, settings: Settings, store: Store
) -> None:
    rt = worker_runtime(settings, FakeEngine(), "tiny")
    source = submit(client)
    drain(rt)
    fresh = client.post(f"/v1/jobs/{source}/rescore", json={"scorer": {"name": "exact_match"}})
    drain(rt)
    run_archiving(rt)
    assert store.get_job(source).archive is not None
    again = client.post(f"/v1/jobs/{source}/rescore", json={"scorer": {"name": "exact_match"}})
    assert again.status_code == 202, again.text
    drain(rt)
    a = client.get(f"/v1/jobs/{fresh.json()['id']}/results").json()
    b = client.get(f"/v1/jobs/{again.json()['id']}/results").json()
    for r in (a, b):
        r.pop("id")
    assert a == b
    assert [p["n"] for p in b["prompts"]] == [100] * 4


def test_purge_deletes_both_copies_and_the_sweep_deletes_expired_archives(
    client: TestClient, settings: Settings, store: Store, redis_client: redis.Redis
) -> None:
    rt = worker_runtime(settings, FakeEngine(), "tiny")
    a, b, c = submit(client), submit(client), submit(client)
    drain(rt)
    run_archiving(rt)
    base = Path(settings.archive_url)
    assert sorted(p.name for p in base.iterdir()) == sorted([a, b, c])
    assert client.delete(f"/v1/jobs/{a}", params={"purge": "true"}).status_code == 204
    assert not (base / a).exists()
    assert not [k for k in redis_client.scan_iter(match=f"*{a}*")]

    # An unfinished folder (a crash, no manifest) of a job whose record is gone, and one of a
    # job that still has its record.
    (base / "gone-job" / ".tmp-1").mkdir(parents=True)
    (base / c / MANIFEST).unlink()
    outcome = sweep_expired(redis_client, settings.archive_url, {})
    assert (outcome.expired, outcome.unfinished) == (0, 1)
    assert sorted(p.name for p in base.iterdir()) == sorted([b, c])
    expires = Manifest.from_json((base / b / MANIFEST).read_text()).expires_at
    assert expires == pytest.approx(store.get_job(b).created_at + settings.retention_s)
    outcome = sweep_expired(redis_client, settings.archive_url, {}, now=expires + 1)
    assert outcome.expired == 1
    assert sorted(p.name for p in base.iterdir()) == [c]


def test_the_same_flow_on_an_s3_server(
    client: TestClient, settings: Settings, store: Store, redis_client: redis.Redis, s3_server: Any
) -> None:
    """Archive to ``s3://`` on moto's server process through s3fs; read back identically
    through the gateway; purge deletes the objects."""
    import s3fs

    s3 = s3fs.S3FileSystem(**s3_server.options)
    prefix = f"{s3_server.bucket}/t-{redis_client.info('server')['process_id']}"
    on_s3 = settings.model_copy(
        update={"archive_url": f"s3://{prefix}", "archive_options": s3_server.options}
    )
    store.archive_options = s3_server.options
    rt = worker_runtime(on_s3, FakeEngine(), "tiny")
    job_id = submit(client)
    drain(rt)
    before = everything(client, job_id)
    run_archiving(rt)
    assert store.get_job(job_id).archive == f"s3://{prefix}/{job_id}"
    assert draw_keys_left(redis_client, job_id) == []
    s3.invalidate_cache()
    assert sorted(p.rsplit("/", 1)[-1] for p in s3.ls(f"{prefix}/{job_id}")) == sorted(
        [DRAWS, "prompts.parquet", "results.parquet", MANIFEST]
    )
    # The gateway's store reads with the S3 options (PROBEVAL_ARCHIVE_OPTIONS).
    client.app.state.store.archive_options = s3_server.options  # type: ignore[attr-defined]
    assert everything(client, job_id) == before
    client.app.state.settings = on_s3  # type: ignore[attr-defined]
    assert client.delete(f"/v1/jobs/{job_id}", params={"purge": "true"}).status_code == 204
    s3.invalidate_cache()
    assert not s3.exists(f"{prefix}/{job_id}")


def test_record_archive_sets_the_location_once_and_never_on_a_missing_record(
    store: Store, redis_client: redis.Redis
) -> None:
    manifest = Manifest("j", "succeeded", 3, [3], "abc", True, 1.0, 2.0)
    assert record_archive(store, "j", "/a/j", manifest) == -1
    assert not redis_client.exists(keys.job("j"))  # no half record created
    redis_client.hset(keys.job("j"), mapping={"status": "succeeded"})
    assert record_archive(store, "j", "/a/j", manifest) == 1
    assert record_archive(store, "j", "/b/j", manifest) == 0
    record = redis_client.hgetall(keys.job("j"))
    assert (record["archive"], record["archive_draws"], record["archive_scores_sha256"]) == (
        "/a/j",
        "3",
        "abc",
    )
