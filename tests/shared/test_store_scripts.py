"""The Lua scripts of the store and of adaptive rounds, run directly against the real test Redis
(no worker, no vLLM). A guard lists every script in the code and the tests that run it (the
admission script's are in test_job_record.py), so a new script without a test fails."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import redis

from shared import keys
from shared.adaptive import _ADVANCE_CHUNK
from shared.planning import plan_chunks
from shared.schemas import ErrorInfo, JobCreate, JobStatus
from shared.store import ACTIVE, Store

ROOT = Path(__file__).resolve().parents[2]
# module:constant of each Lua script -> (test file, prefix of the tests there that run it).
TESTED_SCRIPTS = {
    "shared/store.py:_SAVE_NEW_FIELDS": (
        "tests/shared/test_store_scripts.py",
        "test_save_new_fields_",
    ),
    "shared/job_record.py:SET_STATUS": ("tests/shared/test_store_scripts.py", "test_set_status_"),
    "shared/job_record.py:ADMIT_JOB": ("tests/shared/test_job_record.py", "test_"),
    "shared/adaptive.py:_ADVANCE_CHUNK": ("tests/shared/test_store_scripts.py", "test_advance_"),
    "shared/archive.py:RECORD_ARCHIVE": (
        "tests/workers/scorer/test_archiving.py",
        "test_record_archive_",
    ),
}


def lua_scripts() -> set[str]:
    """Module-level string constants holding Lua (``redis.call``) in the service code."""
    found = set()
    for package in ("shared", "services", "workers"):
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.parse(path.read_text()).body:
                if (
                    isinstance(node, ast.Assign)
                    and isinstance(node.value, ast.Constant)
                    and isinstance(node.value.value, str)
                    and "redis.call(" in node.value.value
                ):
                    for target in node.targets:
                        if isinstance(target, ast.Name):
                            found.add(f"{path.relative_to(ROOT)}:{target.id}")
    return found


def test_every_lua_script_has_a_direct_test() -> None:
    assert lua_scripts() == set(TESTED_SCRIPTS)
    for script, (path, prefix) in TESTED_SCRIPTS.items():
        tests = [
            node.name
            for node in ast.parse((ROOT / path).read_text()).body
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            and node.name.startswith(prefix)
        ]
        assert tests, f"{script}: no {prefix}* test in {path}"


def new_job(store: Store, job_id: str = "j1", tenant: str = "team-a") -> JobCreate:
    spec = JobCreate.model_validate(
        {
            "model": "tiny",
            "prompts": [{"id": "p", "prompt": "q", "reference": "r"}],
            "sampling": {"n": 4},
        }
    )
    store.create_job(job_id, spec, plan_chunks(job_id, spec, chunk_max_n=4, chunk_draws=4),
                     tenant=tenant)  # fmt: skip
    return spec


# ---- _SAVE_NEW_FIELDS: HSETNX per index, progress counted once per new index ----------------


def test_save_new_fields_first_write_wins_and_counts_each_index_once(
    store: Store, redis_client: redis.Redis
) -> None:
    new_job(store)
    assert store.save_texts("j1", 0, {0: "a", 1: "b"}) == 2
    assert store.save_texts("j1", 0, {1: "CHANGED", 2: "c"}) == 1  # index 1 kept, 2 new
    assert store.texts("j1", 0, [0, 1, 2, 3]) == ["a", "b", "c", None]
    assert int(redis_client.hget(keys.job("j1"), "samples_generated")) == 3
    assert store.save_scores("j1", 0, {0: 0.5, 1: 1.0}) == 2
    assert store.save_scores("j1", 0, {0: 0.0}) == 0
    assert store.all_scores("j1", 0) == {0: 0.5, 1: 1.0}
    assert int(redis_client.hget(keys.job("j1"), "samples_done")) == 2


def test_save_new_fields_many_prompts_in_one_round_trip_keep_first_write_wins(
    store: Store, redis_client: redis.Redis
) -> None:
    new_job(store)
    store.save_texts("j1", 1, {0: "kept"})
    calls: list[str] = []

    def counter(pipe: redis.client.Pipeline) -> None:
        calls.append("queued")
        pipe.hincrby("probeval-test:counter", "draws", 5)

    new = store.save_texts_many(
        "j1", {0: {0: "a", 1: "b"}, 1: {0: "CHANGED", 1: "c"}, 2: {}}, also=counter
    )
    assert new == 3 and calls == ["queued"]
    assert store.texts_many("j1", {0: [0, 1, 2], 1: [0, 1], 2: []}) == {
        0: ["a", "b", None],
        1: ["kept", "c"],
        2: [],
    }
    assert int(redis_client.hget(keys.job("j1"), "samples_generated")) == 4
    assert int(redis_client.hget("probeval-test:counter", "draws")) == 5
    # A retried chunk writes nothing new and counts nothing twice.
    assert store.save_texts_many("j1", {0: {0: "x", 1: "y"}, 1: {1: "z"}}) == 0
    assert int(redis_client.hget(keys.job("j1"), "samples_generated")) == 4
    assert store.save_scores_many("j1", {0: {0: 0.25}, 1: {0: 1.0, 1: 0.0}}) == 3
    assert store.save_scores_many("j1", {0: {0: 0.75}}) == 0
    assert store.all_scores("j1", 0) == {0: 0.25}
    assert int(redis_client.hget(keys.job("j1"), "samples_done")) == 3


def test_save_new_fields_sets_the_retention_ttl(store: Store, redis_client: redis.Redis) -> None:
    new_job(store)
    store.save_texts("j1", 0, {0: "a"})
    assert 0 < redis_client.ttl(keys.job_texts("j1", 0)) <= store.retention_s


def test_save_new_fields_of_a_deleted_job_creates_no_counter(
    store: Store, redis_client: redis.Redis
) -> None:
    # A chunk finishing after its job was purged must not resurrect the job record.
    assert store.save_texts("gone", 0, {0: "a"}) == 1
    assert not redis_client.exists(keys.job("gone"))


# ---- _SET_STATUS: compare-and-set, error, leaving the tenant's active set -------------------


def test_set_status_moves_only_from_the_allowed_statuses(store: Store) -> None:
    new_job(store)
    assert store.set_status("j1", JobStatus.running, allowed_from=[JobStatus.queued]) == (
        JobStatus.queued
    )
    assert store.set_status("j1", JobStatus.running, allowed_from=[JobStatus.queued]) is None
    assert store.get_status("j1") == JobStatus.running
    assert store.set_status("j1", JobStatus.succeeded, allowed_from=ACTIVE) == JobStatus.running
    assert store.set_status("j1", JobStatus.failed, allowed_from=ACTIVE) is None
    assert store.get_status("j1") == JobStatus.succeeded


def test_set_status_of_a_missing_job_changes_nothing(
    store: Store, redis_client: redis.Redis
) -> None:
    assert store.set_status("nope", JobStatus.failed, allowed_from=ACTIVE) is None
    assert not redis_client.exists(keys.job("nope"))


def test_set_status_stores_the_error_with_the_status(store: Store) -> None:
    new_job(store)
    error = ErrorInfo(code="chunk_failed", message="chunk 0 failed 3 times", param=None)
    store.set_status("j1", JobStatus.failed, allowed_from=ACTIVE, error=error)
    job = store.get_job("j1")
    assert job.status == JobStatus.failed and job.error == error


@pytest.mark.parametrize("final", [JobStatus.succeeded, JobStatus.failed, JobStatus.cancelled])
def test_set_status_terminal_leaves_the_tenants_active_jobs(store: Store, final: JobStatus) -> None:
    new_job(store, "j1")
    new_job(store, "j2")
    assert store.active_jobs("team-a") == 2
    store.set_status("j1", JobStatus.running, allowed_from=ACTIVE)
    assert store.active_jobs("team-a") == 2  # running is still active
    store.set_status("j1", final, allowed_from=ACTIVE)
    assert store.active_jobs("team-a") == 1


# ---- _ADVANCE: one adaptive round folded in at most once, the next one recorded or not -----


def advance(
    r: redis.Redis, *, start: int, stop: tuple[bool, bool] = (False, False), max_draws: str = ""
) -> list[int]:
    """Run the script for a chunk with rounds of prompts 0 and 1 of job ``t``: 16 draws each,
    ending at start + 16; the next chunk (id 7) gets the rounds of those that go on."""
    script = r.register_script(_ADVANCE_CHUNK)
    per_prompt: list[object] = []
    for i in (0, 1):
        per_prompt += [str(i), start, f'{{"n": {start + 16}, "p": {i}}}', start + 16,
                       "1" if stop[i] else "0", f'{{"slice": {i}}}', 16,
                       f'{{"stopped": "max_draws", "p": {i}}}']  # fmt: skip
    return [
        int(v)
        for v in script(
            keys=["t:streams", "t:job", "t:chunks"],
            args=[2, 7, '{"chunk": 7, "slices": [', "]}", max_draws, 600, *per_prompt],
        )
    ]


@pytest.fixture()
def adaptive_job(redis_client: redis.Redis) -> redis.Redis:
    redis_client.hset(
        "t:job",
        mapping={"status": "running", "samples_total": 48, "chunks_total": 3, "prompts_open": 3},
    )
    redis_client.hset("t:streams", mapping={"0:n": 16, "1:n": 16})
    return redis_client


def test_advance_records_one_next_chunk_for_the_open_prompts_once(
    adaptive_job: redis.Redis,
) -> None:
    r = adaptive_job
    assert advance(r, start=16) == [1, 2, 0]
    assert r.hget("t:streams", "0") == '{"n": 32, "p": 0}' and r.hget("t:streams", "0:n") == "32"
    assert r.hget("t:streams", "1:n") == "32"
    assert r.hget("t:chunks", "7") == '{"chunk": 7, "slices": [{"slice": 0},{"slice": 1}]}'
    assert r.hmget("t:job", ["chunks_total", "samples_total"]) == ["4", "80"]
    assert 0 < r.ttl("t:streams") <= 600
    # The same chunk again (a retry, a duplicate): not this round's turn any more.
    assert advance(r, start=16) == [0]
    assert r.hmget("t:job", ["chunks_total", "samples_total"]) == ["4", "80"]


def test_advance_is_all_or_nothing(adaptive_job: redis.Redis) -> None:
    r = adaptive_job
    r.hset("t:streams", "1:n", 32)  # prompt 1 has moved on: the chunk was applied before
    assert advance(r, start=16) == [0]
    assert r.hget("t:streams", "0:n") == "16" and not r.exists("t:chunks")


def test_advance_stop_closes_the_prompt_and_plans_only_the_open_one(
    adaptive_job: redis.Redis,
) -> None:
    r = adaptive_job
    assert advance(r, start=16, stop=(True, False)) == [1, 1, 1]
    assert r.hget("t:job", "prompts_open") == "2"
    assert r.hget("t:chunks", "7") == '{"chunk": 7, "slices": [{"slice": 1}]}'
    assert r.hmget("t:job", ["chunks_total", "samples_total"]) == ["4", "64"]


def test_advance_when_every_prompt_stops_plans_nothing(adaptive_job: redis.Redis) -> None:
    r = adaptive_job
    assert advance(r, start=16, stop=(True, True)) == [1, 0, 2]
    assert r.hget("t:job", "prompts_open") == "1" and not r.exists("t:chunks")
    assert r.hget("t:job", "chunks_total") == "3"


def test_advance_of_an_ended_job_folds_in_without_planning(adaptive_job: redis.Redis) -> None:
    r = adaptive_job
    r.hset("t:job", "status", "cancelled")
    assert advance(r, start=16) == [1, 0, 0]
    assert r.hget("t:streams", "0:n") == "32" and not r.exists("t:chunks")
    assert r.hget("t:job", "chunks_total") == "3" and r.hget("t:job", "prompts_open") == "3"


def test_advance_over_max_draws_stops_the_prompts_that_do_not_fit(
    adaptive_job: redis.Redis,
) -> None:
    r = adaptive_job
    assert advance(r, start=16, max_draws="70") == [1, 1, 1]  # 48 + 16 fits, + 16 more does not
    assert r.hget("t:streams", "1") == '{"stopped": "max_draws", "p": 1}'
    assert r.hget("t:streams", "1:n") == "32"
    assert r.hget("t:chunks", "7") == '{"chunk": 7, "slices": [{"slice": 0}]}'
    assert r.hget("t:job", "prompts_open") == "2" and r.hget("t:job", "samples_total") == "64"
