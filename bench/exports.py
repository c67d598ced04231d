"""Gateway memory and time while it streams the exports of a large job (docs/BENCHMARKS.md).

Starts a private redis-server and a real gateway process, stores a finished job of
``--prompts`` x ``--n`` draws through ``shared.store.Store`` (the workers' own writes) with its
results, then downloads samples.jsonl, export.parquet (draws and results) and results.csv over
HTTP, one after the other, and reads the gateway's resident memory (VmRSS) and its peak
(VmHWM, from /proc) after each.

    .venv/bin/python bench/exports.py                      # 1,000 x 1,024, ~60-byte texts
    .venv/bin/python bench/exports.py --prompts 100 --n 256

Run by hand; no test asserts these numbers.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._stack import private_redis, store_synthetic_job  # noqa: E402
from probeval.local import free_port, start_gateway  # noqa: E402
from shared.planning import plan_chunks  # noqa: E402
from shared.results import build_results  # noqa: E402
from shared.schemas import JobCreate, JobStatus  # noqa: E402
from shared.store import ACTIVE, Store  # noqa: E402

WORDS = ["the", "river", "runs", "past", "old", "mill", "under", "stone", "bridge", "apples"]


def memory_mib(pid: int) -> dict[str, float]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0]) / 1024
    return fields


def store_job(store: Store, prompts: int, n: int, rng: random.Random) -> str:
    spec = JobCreate.model_validate(
        {
            "model": "bench",
            "prompts": [
                {"id": f"p{i}", "prompt": f"prompt {i}", "reference": "old mill"}
                for i in range(prompts)
            ],
            "sampling": {"n": n},
            "thresholds": [0.25, 0.5, 0.75],
            "quantiles": [0.5, 0.9],
        }
    )
    job_id = "bench-export"
    store.create_job(job_id, spec, plan_chunks(job_id, spec, chunk_max_n=256, chunk_draws=4096))
    for p in range(prompts):
        texts = {i: " ".join(rng.choice(WORDS) for _ in range(12)) for i in range(n)}
        store.save_texts(job_id, p, texts)
        store.save_scores(job_id, p, {i: rng.random() for i in range(n)})
    job = store.get_job(job_id)
    store.save_results(job_id, build_results(store, job, status=JobStatus.succeeded))
    store.set_status(job_id, JobStatus.succeeded, allowed_from=ACTIVE)
    return job_id


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=1000)
    parser.add_argument("--n", type=int, default=1024)
    args = parser.parse_args()
    with private_redis(appendonly=False) as redis_server:
        group, url = redis_server.group, redis_server.url
        job_id = store_synthetic_job(url, store_job, args.prompts, args.n)
        base = start_gateway(group, "127.0.0.1", free_port(), {"PROBEVAL_REDIS_URL": url})
        pid = next(p.pid for name, p in group.procs if name == "gateway")
        rows = {"after start": {**memory_mib(pid), "bytes": 0, "seconds": 0.0}}
        with httpx.Client(base_url=base, timeout=None) as c:
            c.get(f"/v1/jobs/{job_id}")
            for name, path in [
                ("samples.jsonl", f"/v1/jobs/{job_id}/samples.jsonl"),
                ("export.parquet (draws)", f"/v1/jobs/{job_id}/export.parquet"),
                ("export.parquet (results)", f"/v1/jobs/{job_id}/export.parquet?table=results"),
                ("results.csv", f"/v1/jobs/{job_id}/results.csv"),
            ]:
                size = 0
                t0 = time.perf_counter()
                with c.stream("GET", path) as resp:
                    resp.raise_for_status()
                    for chunk in resp.iter_bytes():
                        size += len(chunk)
                rows[name] = {
                    **memory_mib(pid),
                    "bytes": size,
                    "seconds": round(time.perf_counter() - t0, 2),
                }
        print(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
