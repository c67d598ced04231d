"""The service's own ceiling per draw: the whole pipeline with an engine that costs nothing.

    PYTHONPATH=$PWD .venv/bin/python bench/pipeline_ceiling.py [--prompts 16] [-n 1024]
        [--words 32] [--kinds rouge_l_recall,rouge_l_f,exact_match,contains,regex]
        [--scorers 1,2] [--repeats 3]

Real processes throughout: a private redis-server (AOF on, as ``probeval up`` runs it), the
gateway, one sampler process running the real sampler code (``serve_engine``, RQ SimpleWorker,
watchdog, heartbeat, ``sample_chunk``, storage, scoring hand-off) around
``bench/canned_engine.py``'s instant engine, and ``probeval worker scorer`` processes. Jobs are
submitted over HTTP with ``max_tokens`` = ``--words`` and the chunking of the default settings.

Each job runs in two phases so that each process kind is measured alone:
1. **sampler**: no scorer runs. POST, then wait until every draw is stored; sampler draws/s =
   draws / (POST to the end of the last sampling chunk, RQ's own ``ended_at``), so it includes
   the queue's hand-offs between chunks. Its ``stages_s`` (the task's result) give us per draw.
2. **scorers**: start S scorer processes, wait for ``succeeded``; scorer draws/s = draws /
   (first scoring chunk's start to the job's ``updated_at``), so process start-up is excluded,
   the final bounds included; per scorer = that / S.
Then one job with the sampler and one scorer running together (``pipeline``: POST to
``succeeded``). Medians over ``--repeats``. On a shared 2-core host every process competes for
the same cores, so 2 scorers cannot show more than the cores left: read the load average.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PROMPT = "The river runs past the old mill and under the stone bridge, prompt {i}."
SCORERS: dict[str, dict[str, Any]] = {
    "rouge_l_recall": {"name": "rouge_l_recall"},
    "rouge_l_f": {"name": "rouge_l_f"},
    "exact_match": {"name": "exact_match"},
    "contains": {"name": "contains"},
    "regex": {"name": "regex", "pattern": r"\bold mill\b"},
}


class Bench:
    def __init__(self, tmp: Path, words: int) -> None:
        from probeval.local import ProcessGroup, free_port, start_gateway, start_redis

        self.group = ProcessGroup(tmp / "logs")
        self.url = start_redis(self.group, tmp / "redis", free_port())
        self.env = {
            "PROBEVAL_REDIS_URL": self.url,
            "PROBEVAL_MAX_N": "100000",
            "PROBEVAL_MAX_DRAWS_PER_JOB": "10000000",
            "PYTHONPATH": str(ROOT),
        }
        self.base = start_gateway(self.group, "127.0.0.1", free_port(), self.env)
        self.words = words
        self.scorers: list[subprocess.Popen[bytes]] = []
        self.group.start(
            "sampler",
            [
                sys.executable,
                "-m",
                "bench.canned_engine",
                "--name",
                "canned",
                "--words",
                str(words),
            ],
            self.env,
        )
        from shared.queues import rq_connection
        from shared.store import Store, connect

        self.rq = rq_connection(self.url)
        self.store = Store(connect(self.url), retention_s=600)
        deadline = time.monotonic() + 60
        while not any(m.name == "canned" for m in self.store.live_models(ttl_s=45)):
            if time.monotonic() > deadline:
                raise RuntimeError("the canned sampler did not register")
            time.sleep(0.2)

    def start_scorers(self, count: int) -> None:
        from probeval.local import start_scorer

        for i in range(count):
            self.scorers.append(start_scorer(self.group, self.env, proc_name=f"scorer{i}"))
        # Ready once RQ lists them (after their imports and warm-up), so that no timed run
        # includes a process start.
        from rq import Worker

        deadline = time.monotonic() + 120
        while sum(w.name.startswith("scorer:") for w in Worker.all(connection=self.rq)) < count:
            if time.monotonic() > deadline:
                raise RuntimeError("the scorers did not start")
            time.sleep(0.1)

    def stop_scorers(self) -> None:
        for proc in self.scorers:
            proc.terminate()
        for proc in self.scorers:
            proc.wait(timeout=30)
            self.group.forget(proc)
        self.scorers = []
        from rq import Worker

        while any(w.name.startswith("scorer:") for w in Worker.all(connection=self.rq)):
            time.sleep(0.1)

    def submit(self, client: Any, prompts: int, n: int, scorer: dict[str, Any]) -> str:
        body = {
            "model": "canned",
            "prompts": [
                {"id": f"p{i}", "prompt": PROMPT.format(i=i), "reference": "the old mill"}
                for i in range(prompts)
            ],
            "sampling": {"n": n, "temperature": 1.0, "max_tokens": self.words},
            "scorer": scorer,
            "greedy": False,
        }
        return str(client.post("/v1/jobs", json=body).raise_for_status().json()["id"])

    def chunk_results(self, job_id: str, stage: str) -> list[Any]:
        from rq.job import Job
        from rq.serializers import JSONSerializer

        from shared import keys

        total = int(self.store.r.hget(keys.job(job_id), "chunks_total") or 0)
        ids = [keys.rq_chunk_id(job_id, c, stage) for c in range(total)]
        return [
            j
            for j in Job.fetch_many(ids, connection=self.rq, serializer=JSONSerializer)
            if j is not None
        ]

    def wait_field(self, job_id: str, field: str, value: int, timeout_s: float = 600) -> None:
        from shared import keys

        deadline = time.monotonic() + timeout_s
        while int(self.store.r.hget(keys.job(job_id), field) or 0) < value:
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id}: {field} did not reach {value}")
            time.sleep(0.02)

    def wait_succeeded(self, job_id: str, timeout_s: float = 600) -> float:
        from shared import keys

        deadline = time.monotonic() + timeout_s
        while (status := self.store.get_status(job_id)) is None or not status.terminal:
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} did not finish")
            time.sleep(0.02)
        assert status.value == "succeeded", self.store.get_job(job_id)
        return float(self.store.r.hget(keys.job(job_id), "updated_at") or 0)

    def wait_sampled(self, job_id: str, draws: int) -> float:
        """When the last sampling chunk ended (RQ's record), once every draw is stored."""
        self.wait_field(job_id, "samples_generated", draws)
        deadline = time.monotonic() + 60
        while True:
            jobs = self.chunk_results(job_id, "sample")
            if jobs and all(j.ended_at is not None for j in jobs):
                return max(j.ended_at.timestamp() for j in jobs if j.ended_at)
            if time.monotonic() > deadline:
                raise TimeoutError("sampling chunks never ended")
            time.sleep(0.02)

    def stages(self, job_id: str, stage: str) -> dict[str, float]:
        totals: dict[str, float] = {}
        for j in self.chunk_results(job_id, stage):
            result = j.return_value() or {}
            for name, seconds in (result.get("stages_s") or {}).items():
                totals[name] = totals.get(name, 0.0) + float(seconds)
        return totals

    def between_chunks(self, job_id: str, stage: str) -> float:
        """Seconds RQ's records show outside the tasks: (last end - first start) minus the
        time inside the tasks, for a stage one process ran alone."""
        jobs = [j for j in self.chunk_results(job_id, stage) if j.started_at and j.ended_at]
        span = max(j.ended_at.timestamp() for j in jobs) - min(
            j.started_at.timestamp() for j in jobs
        )
        return span - sum(self.stages(job_id, stage).values())

    def close(self) -> None:
        self.group.stop()


def run(args: argparse.Namespace) -> dict[str, Any]:
    import httpx

    kinds = args.kinds.split(",")
    scorer_counts = [int(s) for s in args.scorers.split(",")]
    draws = args.prompts * args.n
    out: dict[str, Any] = {"sampler": [], "sampler_stages": [], "scorer": {}, "pipeline": []}
    with tempfile.TemporaryDirectory() as tmp:
        bench = Bench(Path(tmp), args.words)
        try:
            with httpx.Client(base_url=bench.base, timeout=60) as client:
                # Warm-up: one small job through everything (imports, script loads).
                bench.start_scorers(1)
                bench.wait_succeeded(bench.submit(client, 2, 64, SCORERS["rouge_l_recall"]))
                bench.stop_scorers()
                for _ in range(args.repeats):
                    for kind in kinds:
                        for count in scorer_counts:
                            posted = time.time()
                            job_id = bench.submit(client, args.prompts, args.n, SCORERS[kind])
                            ended = bench.wait_sampled(job_id, draws)
                            out["sampler"].append(draws / (ended - posted))
                            stages = bench.stages(job_id, "sample")
                            stages["between chunks (RQ)"] = bench.between_chunks(job_id, "sample")
                            out["sampler_stages"].append(stages)
                            bench.start_scorers(count)
                            done = bench.wait_succeeded(job_id)
                            first = min(
                                j.started_at.timestamp()
                                for j in bench.chunk_results(job_id, "score")
                                if j.started_at
                            )
                            rate = draws / (done - first)
                            stages = bench.stages(job_id, "score")
                            if count == 1:
                                stages["between chunks (RQ)"] = bench.between_chunks(
                                    job_id, "score"
                                )
                            out["scorer"].setdefault((kind, count), []).append(
                                {"rate": rate, "stages": stages}
                            )
                            bench.stop_scorers()
                    bench.start_scorers(1)
                    posted = time.time()
                    job_id = bench.submit(client, args.prompts, args.n, SCORERS[kinds[0]])
                    out["pipeline"].append(draws / (bench.wait_succeeded(job_id) - posted))
                    bench.stop_scorers()
        finally:
            bench.close()
    return out


def report(args: argparse.Namespace, out: dict[str, Any]) -> None:
    draws = args.prompts * args.n
    med = statistics.median
    print(
        f"workload: {args.prompts} prompts x n={args.n}, {args.words}-word canned texts, "
        f"{args.repeats} repeats; load average {os.getloadavg()[0]:.2f} at the end"
    )
    rates = out["sampler"]
    print(
        f"sampler process: median {med(rates):,.0f} draws/s ({1e6 / med(rates):.1f} us/draw), "
        f"runs {', '.join(f'{r:,.0f}' for r in rates)}"
    )
    names = sorted({k for s in out["sampler_stages"] for k in s})
    per_draw = {k: med([s.get(k, 0.0) for s in out["sampler_stages"]]) / draws * 1e6 for k in names}
    print("  sampler stages, us/draw: " + ", ".join(f"{k} {v:.2f}" for k, v in per_draw.items()))
    print(
        f"  (sum {sum(per_draw.values()):.1f} us/draw; the rest of 1/rate is the submit and "
        "the first dequeue)"
    )
    for (kind, count), runs in out["scorer"].items():
        rs = [r["rate"] for r in runs]
        names = sorted({k for r in runs for k in r["stages"]})
        stages = {k: med([r["stages"].get(k, 0.0) for r in runs]) / draws * 1e6 for k in names}
        print(
            f"scorer {kind:15s} x{count}: median {med(rs):,.0f} draws/s in all, "
            f"{med(rs) / count:,.0f} per scorer process; stage us/draw (summed over scorers): "
            + ", ".join(f"{k} {v:.2f}" for k, v in stages.items())
        )
    pipe = out["pipeline"]
    print(
        f"pipeline (sampler + 1 scorer running together, {args.kinds.split(',')[0]}): "
        f"median {med(pipe):,.0f} draws/s POST to succeeded, runs "
        + ", ".join(f"{r:,.0f}" for r in pipe)
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("-n", type=int, default=1024)
    parser.add_argument("--words", type=int, default=32, help="words per canned text")
    parser.add_argument("--kinds", default=",".join(SCORERS))
    parser.add_argument("--scorers", default="1,2", help="scorer process counts to compare")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    report(args, run(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
