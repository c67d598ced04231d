"""The archive with real processes: jobs run through the session's stack (redis-server, gateway,
scorer, vLLM sampler on the tiny model); the archiving worker is a process of its own, killed
with SIGKILL between writing the archive and deleting the Redis copy, and the stack's scorer
then finishes the job's archiving task. The same flow to an S3 server process (moto), read back
through a gateway process of its own.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from rq.registry import ScheduledJobRegistry
from rq.serializers import JSONSerializer

from probeval.local import ProcessGroup, free_port, start_gateway
from shared import keys
from shared.archive_files import DRAWS, MANIFEST, PROMPTS, RESULTS, Manifest
from shared.config import Settings
from shared.queues import enqueue_archive, rq_connection
from shared.store import connect
from tests.fixtures.s3 import S3Server
from tests.fixtures.stacks import Stack, requires_vllm

pytestmark = [pytest.mark.slow, pytest.mark.vllm, requires_vllm]

# The archiving worker, with its task paused at one step (``sys.argv[3]``: a name in
# workers.scorer.archiving) so that the kill lands exactly there.
PAUSED_ARCHIVER = """
import os, sys, time, pathlib
import workers.scorer.archiving as archiving
from shared.config import Settings
from workers import runtime
def paused(*args, **kwargs):
    pathlib.Path(sys.argv[2]).write_text(str(os.getpid()))
    time.sleep(3600)
if sys.argv[3] != "none":
    setattr(archiving, sys.argv[3], paused)
print(archiving.archive_job(runtime.build(Settings()), sys.argv[1]), flush=True)
"""

BODY = {
    "model": "tiny",
    "prompts": [
        {
            "id": f"q{i}",
            "prompt": f"Question {i}: where is the old mill?",
            "reference": "by the river",
        }
        for i in range(3)
    ],
    "sampling": {"n": 24, "max_tokens": 8, "seed": 5},
    "greedy": True,
}


def snapshot(base: str, job_id: str) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    with httpx.Client(base_url=base, timeout=60) as c:
        for p in ("q0", "q1", "q2"):
            for offset, limit in ((0, 24), (5, 7), (20, 10)):
                out[f"samples {p} {offset} {limit}"] = c.get(
                    f"/v1/jobs/{job_id}/samples",
                    params={"prompt_id": p, "offset": offset, "limit": limit},
                ).content
        for path in ("results", "results.csv", "samples.jsonl", "export.parquet", "report"):
            resp = c.get(f"/v1/jobs/{job_id}/{path}")
            assert resp.status_code == 200, (path, resp.text)
            out[path] = resp.content
    return out


def draw_keys(stack: Stack, job_id: str) -> list[str]:
    r = connect(stack.env["PROBEVAL_REDIS_URL"])
    names = [str(k) for k in r.scan_iter(match=keys.job_keys_pattern(job_id), count=1000)]
    return names


def run_job(stack: Stack) -> tuple[str, dict[str, bytes]]:
    with stack.client() as c:
        job_id = str(c.post("/v1/jobs", json=BODY).json()["id"])
    assert stack.wait_for_job(job_id)["status"] == "succeeded"
    before = snapshot(stack.base, job_id)
    record = connect(stack.env["PROBEVAL_REDIS_URL"]).hgetall(keys.job(job_id))
    assert "archive" not in record, "archived before the test read the Redis copy"
    return job_id, before


def start_archiver(
    env: dict[str, str], job_id: str, marker: Path, pause_at: str, log: Path
) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-c", PAUSED_ARCHIVER, job_id, str(marker), pause_at],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **env},
        )


def wait_for(predicate: Any, what: str, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


@pytest.mark.parametrize("pause_at", ["record_archive", "delete_draw_keys"])
def test_kill_9_of_the_archiving_worker_then_a_restart_leaves_one_complete_archive(
    stack: Stack, tmp_path: Path, pause_at: str
) -> None:
    job_id, before = run_job(stack)
    r = connect(stack.env["PROBEVAL_REDIS_URL"])
    # The job's end queued its archiving task (a minute later in this stack).
    scheduled = ScheduledJobRegistry(
        keys.ARCHIVE_QUEUE,
        connection=rq_connection(stack.env["PROBEVAL_REDIS_URL"]),
        serializer=JSONSerializer,
    )
    assert keys.rq_archive_id(job_id) in scheduled.get_job_ids()
    marker = tmp_path / "paused"
    proc = start_archiver(stack.env, job_id, marker, pause_at, tmp_path / "archiver.log")
    try:
        wait_for(marker.exists, f"archiver never paused: {(tmp_path / 'archiver.log').read_text()}")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    folder = Path(stack.env["PROBEVAL_ARCHIVE_URL"]) / job_id
    assert (folder / MANIFEST).exists()  # written and verified before the pause
    recorded = r.hget(keys.job(job_id), "archive")
    assert (recorded is not None) == (pause_at == "delete_draw_keys")
    assert draw_keys(stack, job_id)  # the Redis copy is still whole
    assert snapshot(stack.base, job_id) == before

    # The restart: the stack's scorer runs the job's archiving task (now rather than in a minute).
    enqueue_archive(rq_connection(stack.env["PROBEVAL_REDIS_URL"]), job_id, Settings(), delay_s=0)
    wait_for(lambda: not draw_keys(stack, job_id), "the scorer never finished the archiving")
    assert r.hget(keys.job(job_id), "archive") == str(folder)
    assert sorted(p.name for p in folder.iterdir()) == sorted([DRAWS, PROMPTS, RESULTS, MANIFEST])
    manifest = Manifest.from_json((folder / MANIFEST).read_text())
    assert manifest.draws_per_prompt == [24, 24, 24]
    assert snapshot(stack.base, job_id) == before


def test_the_same_flow_on_an_s3_server_process(
    stack: Stack, s3_server: S3Server, tmp_path: Path
) -> None:
    import s3fs

    job_id, before = run_job(stack)
    env = {**stack.env, **s3_server.env("e2e")}
    proc = start_archiver(env, job_id, tmp_path / "unused", "none", tmp_path / "archiver.log")
    assert proc.wait(timeout=180) == 0, (tmp_path / "archiver.log").read_text()
    location = f"s3://{s3_server.bucket}/e2e/{job_id}"
    assert connect(stack.env["PROBEVAL_REDIS_URL"]).hget(keys.job(job_id), "archive") == location
    assert not draw_keys(stack, job_id)
    # A gateway process that reads the bucket (the stack's reads the local folder).
    group = ProcessGroup(tmp_path / "logs")
    try:
        base = start_gateway(group, "127.0.0.1", free_port(), env)
        assert snapshot(base, job_id) == before
        with httpx.Client(base_url=base, timeout=60) as c:
            assert c.delete(f"/v1/jobs/{job_id}", params={"purge": "true"}).status_code == 204
    finally:
        group.stop()
    s3 = s3fs.S3FileSystem(**s3_server.options)
    assert not s3.exists(location)
