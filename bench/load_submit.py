"""Submission load on one gateway: COUNT job submissions from CONCURRENCY clients, on loopback.

Every accepted job is cancelled right after its 202 (cancel is a terminal state) except every
KEEP_EVERY-th, which runs to its end; then the generator waits until every accepted job is
terminal. It reports the status codes, the submit latency (p50/p99, from sending the POST to its
answer) and the submit throughput, and which accepted jobs are lost (not found, or not terminal
in time). Bounded in count (<= 100,000) and time (--max-seconds); loopback addresses only.

    .venv/bin/python bench/load_submit.py --base http://127.0.0.1:8000 --key KEY --model tiny

tests/reliability/test_load.py runs the same code at 1,000 x 50 against the real processes.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import statistics
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlparse

import httpx

MAX_COUNT = 100_000
TERMINAL = ("succeeded", "failed", "cancelled")


@dataclass
class LoadReport:
    submitted: int
    concurrency: int
    statuses: dict[int, int]
    p50_ms: float
    p99_ms: float
    max_ms: float
    submit_seconds: float
    throughput_per_s: float
    accepted: int
    kept: list[str] = field(default_factory=list)
    cancelled: int = 0
    final_statuses: dict[str, int] = field(default_factory=dict)
    lost: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    settle_seconds: float = 0.0


def check_loopback(base: str) -> None:
    host = urlparse(base).hostname or ""
    if host == "localhost":
        return
    try:
        if ipaddress.ip_address(host).is_loopback:
            return
    except ValueError:
        pass
    raise ValueError(f"load_submit: {base} is not a loopback address; refusing to send load")


def job_body(model: str, i: int) -> dict[str, Any]:
    """The smallest real job: one prompt, one draw of one token, no greedy chunk."""
    return {
        "model": model,
        "prompts": [{"id": f"load-{i}", "prompt": f"Load test prompt {i}", "reference": "x"}],
        "sampling": {"n": 1, "max_tokens": 1},
        "greedy": False,
    }


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=1000, method="inclusive")[round(q * 1000) - 1]


async def run_load(
    base: str,
    *,
    headers: dict[str, str],
    model: str,
    count: int = 1000,
    concurrency: int = 50,
    keep_every: int = 100,
    max_seconds: float = 300.0,
) -> LoadReport:
    check_loopback(base)
    if not 1 <= count <= MAX_COUNT or not 1 <= concurrency <= 1000:
        raise ValueError(f"count must be in 1..{MAX_COUNT}, concurrency in 1..1000")
    deadline = time.monotonic() + max_seconds
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    accepted: list[tuple[int, str]] = []
    errors: list[str] = []
    cancelled = 0
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(count):
        queue.put_nowait(i)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async with httpx.AsyncClient(
        base_url=base, headers=headers, timeout=60, limits=limits
    ) as client:

        async def one_client() -> None:
            nonlocal cancelled
            while not queue.empty() and time.monotonic() < deadline:
                i = queue.get_nowait()
                start = time.perf_counter()
                try:
                    resp = await client.post("/v1/jobs", json=job_body(model, i))
                except httpx.HTTPError as exc:
                    errors.append(f"submit {i}: {exc!r}")
                    continue
                latencies.append(time.perf_counter() - start)
                statuses[resp.status_code] += 1
                if resp.status_code != 202:
                    continue
                job_id = resp.json()["id"]
                accepted.append((i, job_id))
                if i % keep_every != 0:
                    try:
                        cancel = await client.delete(f"/v1/jobs/{job_id}")
                    except httpx.HTTPError as exc:
                        errors.append(f"cancel {job_id}: {exc!r}")
                        continue
                    # 409: it finished between the submit and the cancel.
                    if cancel.status_code == 200:
                        cancelled += 1
                    elif cancel.status_code != 409:
                        errors.append(f"cancel {job_id}: {cancel.status_code} {cancel.text}")

        started = time.perf_counter()
        await asyncio.gather(*(one_client() for _ in range(concurrency)))
        submit_seconds = time.perf_counter() - started

        # Every accepted job must reach a terminal state.
        settle_start = time.perf_counter()
        pending = {job_id for _, job_id in accepted}
        final: dict[str, str] = {}
        while pending and time.monotonic() < deadline:
            for job_id in list(pending):
                try:
                    resp = await client.get(f"/v1/jobs/{job_id}")
                except httpx.HTTPError as exc:  # reported; the job stays pending
                    errors.append(f"poll {job_id}: {exc!r}")
                    continue
                if resp.status_code == 200 and resp.json()["status"] in TERMINAL:
                    final[job_id] = resp.json()["status"]
                    pending.discard(job_id)
            if pending:
                await asyncio.sleep(0.5)

    ms = [1000 * x for x in latencies]
    done = len(latencies)
    return LoadReport(
        submitted=done,
        concurrency=concurrency,
        statuses=dict(sorted(statuses.items())),
        p50_ms=round(_percentile(ms, 0.5), 1),
        p99_ms=round(_percentile(ms, 0.99), 1),
        max_ms=round(max(ms), 1) if ms else float("nan"),
        submit_seconds=round(submit_seconds, 2),
        throughput_per_s=round(done / submit_seconds, 1) if submit_seconds else float("nan"),
        accepted=len(accepted),
        kept=[job_id for i, job_id in accepted if i % keep_every == 0],
        cancelled=cancelled,
        final_statuses=dict(Counter(final.values())),
        lost=sorted(pending),
        errors=errors[:20],
        settle_seconds=round(time.perf_counter() - settle_start, 2),
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--base", default="http://127.0.0.1:8000", help="gateway URL (loopback only)")
    p.add_argument("--key", help="API key (Authorization: Bearer KEY)")
    p.add_argument("--model", default="tiny", help="a model a live sampler serves")
    p.add_argument("--count", type=int, default=1000)
    p.add_argument("--concurrency", type=int, default=50)
    p.add_argument("--keep-every", type=int, default=100, help="let every k-th job run to its end")
    p.add_argument("--max-seconds", type=float, default=300.0)
    args = p.parse_args(argv)
    headers = {"Authorization": f"Bearer {args.key}"} if args.key else {}
    report = asyncio.run(
        run_load(
            args.base,
            headers=headers,
            model=args.model,
            count=args.count,
            concurrency=args.concurrency,
            keep_every=args.keep_every,
            max_seconds=args.max_seconds,
        )
    )
    json.dump(asdict(report), sys.stdout, indent=2)
    print()
    return 0 if not report.lost and not report.errors else 1


if __name__ == "__main__":
    sys.exit(main())
