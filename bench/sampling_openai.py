"""Draws per second through probeval's endpoint sampler vs a direct client, same vLLM server.

    .venv/bin/python bench/sampling_openai.py [--model DIR] [--prompts 8] [-n 128]
        [--max-tokens 16] [--concurrency 8] [--pairs 5]

One vLLM OpenAI-compatible server (``python -m vllm.entrypoints.openai.api_server``, the
options of ``probeval.local_endpoint.CPU_SERVER_OPTIONS``) serves the model to both sides:
- probeval: a private redis-server, the gateway, one scorer and one endpoint sampler
  (``probeval worker sampler --endpoint ... --concurrency K``); each timed run is one job (P
  prompts x n draws, temperature 1, no seed, no greedy) from POST to ``succeeded`` (the job's
  ``updated_at``), so it includes queueing, storing and scoring every draw and the bounds. The
  sampling stage alone (first sample chunk started to last one ended, from RQ's records) is
  reported too.
- direct: an ``httpx.AsyncClient`` sending the very requests the sampler sends (one
  ``/v1/completions`` per slice of at most ``PROBEVAL_CHUNK_MAX_N`` draws, same body fields, K in
  flight) and timing from the first request to the last response.
Runs alternate in pairs (probeval first in even pairs, direct first in odd ones) after one
warm-up of each, so each pair sees the same machine load; the machine is shared and noisy.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._stack import (  # noqa: E402
    add_workload_args,
    model_folder,
    private_redis,
    prompt_texts,
    sampling_job_body,
    submit_and_wait,
)

SERVED = "bench-served"
MODEL = "bench"


def direct_bodies(prompts: int, n: int, max_tokens: int, max_n: int) -> list[dict[str, Any]]:
    """The bodies ``OpenAIEngine`` sends for the job above (slices of at most ``max_n``)."""
    bodies = []
    for text in prompt_texts(prompts):
        for start in range(0, n, max_n):
            bodies.append(
                {
                    "model": SERVED,
                    "prompt": text,
                    "n": min(max_n, n - start),
                    "temperature": 1.0,
                    "top_p": 1.0,
                    "top_k": 0,
                    "max_tokens": max_tokens,
                    "return_token_ids": True,
                }
            )
    return bodies


async def direct_run(server: str, bodies: list[dict[str, Any]], concurrency: int) -> dict[str, Any]:
    import httpx

    limit = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(
        base_url=server,
        timeout=600,
        limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
    ) as client:

        async def one(body: dict[str, Any]) -> int:
            async with limit:
                resp = await client.post("/v1/completions", json=body)
                resp.raise_for_status()
                return len(resp.json()["choices"])

        started = time.perf_counter()
        draws = sum(await asyncio.gather(*(one(b) for b in bodies)))
        return {"seconds": time.perf_counter() - started, "draws": draws}


def probeval_run(base: str, body: dict[str, Any], rq: Any) -> dict[str, Any]:
    import httpx
    from rq.job import Job
    from rq.serializers import JSONSerializer

    from shared.queues import chunk_job_ids

    with httpx.Client(base_url=base, timeout=60) as c:
        # The job's own record says when it succeeded: the slow poll adds no error.
        job_id, view, seconds = submit_and_wait(c, body)
    starts, ends = [], []
    for job in Job.fetch_many(
        [i for i in chunk_job_ids(job_id, list(range(256))) if i.endswith("-sample")],
        connection=rq,
        serializer=JSONSerializer,
    ):
        if job is not None and job.started_at and job.ended_at:
            starts.append(job.started_at.timestamp())
            ends.append(job.ended_at.timestamp())
    return {
        "seconds": seconds,
        "sample_s": max(ends) - min(starts),
        "draws": view["progress"]["samples_done"],
    }


def run_pairs(args: argparse.Namespace, model: str) -> list[dict[str, Any]]:
    from probeval.local import free_port, start_gateway, start_scorer, wait_until
    from probeval.local_endpoint import start_endpoint_sampler, start_openai_server
    from shared.config import Settings
    from shared.queues import rq_connection
    from shared.store import Store, connect

    with private_redis(appendonly=False) as redis_server:
        group, redis_url = redis_server.group, redis_server.url
        env = {"PROBEVAL_REDIS_URL": redis_url}
        base = start_gateway(group, "127.0.0.1", free_port(), env)
        start_scorer(group, env)
        server = start_openai_server(group, model, free_port(), served_model=SERVED)
        start_endpoint_sampler(group, server, SERVED, env, name=MODEL, concurrency=args.concurrency)
        store = Store(connect(redis_url), retention_s=3600)
        wait_until(
            lambda: any(m.name == MODEL for m in store.live_models(ttl_s=45)),
            timeout_s=60,
            what="endpoint sampler",
        )
        rq = rq_connection(redis_url)
        body = sampling_job_body(MODEL, args.prompts, args.n, args.max_tokens)
        bodies = direct_bodies(args.prompts, args.n, args.max_tokens, Settings().chunk_max_n)
        probeval_run(base, {**body, "sampling": {**body["sampling"], "n": 8}}, rq)  # warm-up
        asyncio.run(direct_run(server, bodies[:1], args.concurrency))
        pairs = []
        for i in range(args.pairs):
            order = ("probeval", "direct") if i % 2 == 0 else ("direct", "probeval")
            pair: dict[str, Any] = {"order": order}
            for side in order:
                if side == "probeval":
                    pair["probeval"] = probeval_run(base, body, rq)
                else:
                    pair["direct"] = asyncio.run(direct_run(server, bodies, args.concurrency))
            pairs.append(pair)
            print(json.dumps(pair), flush=True)
        return pairs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_workload_args(parser, n=128, max_tokens=16)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--pairs", type=int, default=5)
    args = parser.parse_args()
    with model_folder(args.model) as model:
        pairs = run_pairs(args, model)

    def rate(run: dict[str, Any], key: str = "seconds") -> float:
        return float(run["draws"] / run[key])

    probeval = [rate(p["probeval"]) for p in pairs]
    sampling = [rate(p["probeval"], "sample_s") for p in pairs]
    direct = [rate(p["direct"]) for p in pairs]
    summary = {
        "config": vars(args),
        "probeval_draws_per_s": probeval,
        "probeval_sampling_stage_draws_per_s": sampling,
        "direct_draws_per_s": direct,
        "ratio_of_medians": statistics.median(probeval) / statistics.median(direct),
        "median_pair_ratio": statistics.median(
            p / d for p, d in zip(probeval, direct, strict=True)
        ),
        "sampling_stage_median_pair_ratio": statistics.median(
            s / d for s, d in zip(sampling, direct, strict=True)
        ),
    }
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
