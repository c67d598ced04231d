"""Draws per second through the whole service vs a direct ``LLM.generate`` on the same model.

    .venv/bin/python bench/sampling_overhead.py [--model DIR] [--prompts 8] [-n 512]
        [--max-tokens 32] [--repeats 5] [--dtype auto|float32|bfloat16]

Both sides get the same prompts and sampling parameters (temperature 1, top_p 1, no seed) and
run one after the other on this machine:
- direct: one process loads ``vllm.LLM`` with the engine options ``VllmEngine`` uses and warms
  up; each timed run is one ``LLM.generate`` call (P prompts, ``SamplingParams(n=...)``);
- service: a private redis-server, the gateway, one sampler and one scorer (started like
  ``probeval up``); each timed run is one job submitted over HTTP and timed from POST to
  ``succeeded`` (the job's ``updated_at``; the client polls once a second, as a real one would,
  since a tight poll loop steals CPU from the engine on 2 cores), so it includes queueing, storing every
  draw, scoring every draw and the bounds.
Both engines stay loaded and the timed runs alternate (service, then direct), so each pair sees
the same machine load; this machine is shared and noisy. Draws per second are draws / wall time.
The per-stage times of the service come from RQ's own job records and from the sampling
task's result (``stages_s``: reading the job, the engine call, storing the draws, the scoring
hand-off), so a slow service run says whether the engine call itself or the work around it was
slow. ``--dtype`` is given to both sides (``PROBEVAL_ENGINE_DTYPE`` for the service).
"""

from __future__ import annotations

import argparse
import json
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

from bench._stack import (  # noqa: E402
    add_workload_args,
    model_folder,
    prompt_texts,
    sampling_job_body,
    submit_and_wait,
)


def direct_child(model: str, prompts: int, n: int, max_tokens: int, dtype: str) -> None:
    """Runs in a child process (it imports vllm): one timed ``LLM.generate`` per stdin line."""
    from vllm import LLM, SamplingParams
    from vllm.platforms import current_platform

    from bench.sampling_direct import default_llm_options

    llm = LLM(model=model, seed=0, dtype=dtype, **default_llm_options(current_platform.is_cpu()))
    texts = prompt_texts(prompts)
    params = SamplingParams(n=n, temperature=1.0, top_p=1.0, max_tokens=max_tokens)
    llm.generate(texts, SamplingParams(n=8, max_tokens=4), use_tqdm=False)  # warm-up
    print(json.dumps({"ready": True}), flush=True)
    for _ in sys.stdin:
        started = time.perf_counter()
        outs = llm.generate(texts, params, use_tqdm=False)
        elapsed = time.perf_counter() - started
        draws = sum(len(o.outputs) for o in outs)
        tokens = sum(len(c.token_ids) for o in outs for c in o.outputs)
        print(json.dumps({"seconds": elapsed, "draws": draws, "tokens": tokens}), flush=True)


class Direct:
    """The direct engine, loaded once in its own process and timed on request."""

    def __init__(self, model: str, prompts: int, n: int, max_tokens: int, dtype: str) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--child",
                "direct",
                "--model",
                model,
                "--prompts",
                str(prompts),
                "-n",
                str(n),
                "--max-tokens",
                str(max_tokens),
                "--dtype",
                dtype,
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env={**os.environ, "VLLM_LOGGING_LEVEL": "ERROR"},
        )
        self._read()  # ready

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError("the direct engine process exited")
            if line.startswith("{"):
                return dict(json.loads(line))

    def run(self) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write("run\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait(timeout=60)


def run_pairs(
    model: str, prompts: int, n: int, max_tokens: int, repeats: int, dtype: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Alternate direct and service runs so both see the same machine load."""
    import httpx
    from rq.job import Job
    from rq.serializers import JSONSerializer

    from probeval.local import LocalStack, free_port
    from shared.queues import chunk_job_ids, rq_connection

    body = sampling_job_body("bench", prompts, n, max_tokens)
    direct_runs: list[dict[str, Any]] = []
    service_runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp, LocalStack(Path(tmp)) as stack:
        url = stack.redis()
        stack.env["PROBEVAL_ENGINE_DTYPE"] = dtype
        base = stack.services(model, "bench", "127.0.0.1", free_port())
        stack.wait_for_model(url, "bench")
        rq = rq_connection(url)
        engine = Direct(model, prompts, n, max_tokens, dtype)
        try:
            with httpx.Client(base_url=base, timeout=60) as c:
                for i in range(repeats + 1):  # round 0 warms up the service
                    job_body = body if i else {**body, "sampling": {**body["sampling"], "n": 8}}
                    # The job's own record says when it succeeded: the slow poll adds no error.
                    job_id, view, elapsed = submit_and_wait(c, job_body)
                    if i == 0:
                        continue
                    stages = {"sample": 0.0, "score": 0.0}
                    inside: dict[str, float] = {}
                    ids = chunk_job_ids(job_id, list(range(64)))
                    for job in Job.fetch_many(ids, connection=rq, serializer=JSONSerializer):
                        if job is not None and job.started_at and job.ended_at:
                            stage = job.id.rsplit("-", 1)[1]
                            stages[stage] += (job.ended_at - job.started_at).total_seconds()
                            if stage == "sample":
                                result = job.return_value() or {}
                                for name, sec in (result.get("stages_s") or {}).items():
                                    inside[name] = inside.get(name, 0.0) + float(sec)
                    service_runs.append(
                        {
                            "seconds": elapsed,
                            "draws": view["progress"]["samples_done"],
                            "sample_s": stages["sample"],
                            "score_s": stages["score"],
                            "inside": inside,
                            "load": os.getloadavg()[0],
                        }
                    )
                    direct_runs.append(engine.run())
        finally:
            engine.close()
    return direct_runs, service_runs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_workload_args(parser, n=512, max_tokens=32)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--dtype", default="auto", choices=["auto", "float32", "bfloat16"], help="both sides"
    )
    parser.add_argument("--child", choices=["direct"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "direct":
        direct_child(args.model, args.prompts, args.n, args.max_tokens, args.dtype)
        return 0

    with model_folder(args.model) as model:
        direct_runs, service_runs = run_pairs(
            model, args.prompts, args.n, args.max_tokens, args.repeats, args.dtype
        )

    def rate(run: dict[str, Any]) -> float:
        return float(run["draws"]) / float(run["seconds"])

    d_rates = [rate(r) for r in direct_runs]
    s_rates = [rate(r) for r in service_runs]
    import platform

    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    print(
        f"workload: {args.prompts} prompts x n={args.n} x max_tokens={args.max_tokens}, "
        f"{args.repeats} repeats, dtype {args.dtype}, CPU {cpu} ({os.cpu_count()} cores)"
    )
    print(
        "direct  draws/s: "
        + ", ".join(f"{r:.0f}" for r in d_rates)
        + f"  (median {statistics.median(d_rates):.0f})"
    )
    print(
        "service draws/s: "
        + ", ".join(f"{r:.0f}" for r in s_rates)
        + f"  (median {statistics.median(s_rates):.0f})"
    )
    print(
        f"ratio service/direct (medians): {statistics.median(s_rates) / statistics.median(d_rates):.3f}"
    )
    pairs = [s / d for s, d in zip(s_rates, d_rates, strict=True)]
    print(
        "paired ratios (service run / the direct run right after it): "
        + ", ".join(f"{p:.3f}" for p in pairs)
    )
    for r, d in zip(service_runs, direct_runs, strict=True):
        inside = r["inside"]
        print(
            f"  service job: wall {r['seconds']:.2f} s = sampling chunks {r['sample_s']:.2f} s + "
            f"scoring chunks {r['score_s']:.2f} s + "
            f"{r['seconds'] - r['sample_s'] - r['score_s']:.2f} s other (load {r['load']:.1f})"
        )
        print(
            "    inside the sampling chunks: "
            + ", ".join(f"{k} {v:.3f} s" for k, v in inside.items())
            + f"; the direct call right after: {d['seconds']:.2f} s"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
