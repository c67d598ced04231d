"""Gateway speed: probeval's submit and poll side by side with a bare FastAPI endpoint, and a long
submit run that shows whether throughput declines as jobs accumulate.

    .venv/bin/python bench/gateway.py [--rounds 3] [--duration 10] [--threads 2]
        [--connections 50] [--long-jobs 20000] [--json reports/gateway-bench.json]

Needs ``wrk`` (Debian: ``apt-get install -y wrk``) and ``redis-server``. It starts, on free
loopback ports: one redis-server (no AOF), the probeval gateway (``probeval gateway``, API keys
on, a live model registered by a heartbeat, no sampler, so jobs stay queued; the tenant's
active-jobs limit raised so that no submit is refused) and the bare baseline
(bench/bare_gateway.py: the same pydantic body schema, one pipelined Redis round trip, no auth,
no quota, no RQ). Each server is one uvicorn process; probeval's event loop is
``PROBEVAL_GATEWAY_LOOP`` (``--loop``, default asyncio), the bare one's uvloop.

The load is wrk (C, ``--threads`` threads, ``--connections`` connections, ``--duration`` s per
run, bench/gateway.lua) with the issue's job: 2 prompts, n = 64. Rounds alternate the order of
the two servers (bare first in odd rounds, probeval first in even ones) so both see the same
machine load. Poll is GET /v1/jobs/{id} of one stored job. The ceiling run (wrk against the bare
server's GET /ping, no Redis) shows the load generator is not the limit.

The long run empties Redis, then submits to probeval in runs of ``--segment`` seconds until
``--long-jobs`` jobs are stored, each followed by a bare run of the same length as the control
for the machine's load, and reports each run's rate, its ratio to the control and the server's
CPU time per request against the jobs stored when it began. Server CPU per request (user +
system time of the server process over the run, /proc) is the figure least moved by other load
on the machine. Nothing here is asserted; the figures go to docs/BENCHMARKS.md by hand.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, get_args

import httpx

from probeval.local import ProcessGroup, free_port, http_ok, start_gateway, start_redis, wait_until
from shared import keys
from shared.config import Settings
from shared.store import Store, connect

ROOT = Path(__file__).resolve().parents[1]
LUA = Path(__file__).with_name("gateway.lua")
MODEL = "bench-model"
API_KEY = "bench-key"
BODY = {
    "model": MODEL,
    "prompts": [
        {"id": "q0", "prompt": "Who wrote the Harry Potter books?", "reference": "J. K. Rowling"},
        {"id": "q1", "prompt": "What is the capital of France?", "reference": "Paris"},
    ],
    "sampling": {"n": 64, "max_tokens": 32},
}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc), to show CPU cost per request."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk(
    url: str,
    *,
    method: str,
    body_file: str,
    auth: str,
    args: argparse.Namespace,
    duration: int | None = None,
    pid: int | None = None,
) -> dict[str, Any]:
    env = {**os.environ, "WRK_METHOD": method, "WRK_BODY_FILE": body_file, "WRK_AUTH": auth}
    argv = [
        "wrk", f"-t{args.threads}", f"-c{args.connections}",
        f"-d{int(duration if duration is not None else args.duration)}s",
        "--timeout", "10s", "-s", str(LUA), url,
    ]  # fmt: skip
    cpu_before = cpu_seconds(pid) if pid else 0.0
    out = subprocess.run(argv, env=env, capture_output=True, text=True, check=True).stdout
    cpu = cpu_seconds(pid) - cpu_before if pid else 0.0
    line = next(x for x in out.splitlines() if x.startswith("WRK_JSON "))
    result: dict[str, Any] = json.loads(line.removeprefix("WRK_JSON "))
    result["rps"] = result["requests"] / result["seconds"]
    if pid:
        result["server_cpu_ms_per_request"] = 1000 * cpu / max(1, result["requests"])
    return result


def gateway_pid(group: ProcessGroup) -> int:
    return next(proc.pid for name, proc in group.procs if name == "gateway")


def short(r: dict[str, Any]) -> str:
    return (
        f"{r['rps']:8.1f} req/s  p50 {r['p50_us'] / 1000:6.1f} ms  p99 {r['p99_us'] / 1000:6.1f} ms"
        f"  server CPU {r.get('server_cpu_ms_per_request', 0):.3f} ms/req"
        f"  non-2xx {r['non_2xx']}  socket errors {r['socket_errors']}"
    )


def median_of(runs: list[dict[str, Any]], field: str) -> float:
    return float(statistics.median(r[field] for r in runs))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--long-jobs", type=int, default=20_000)
    parser.add_argument("--segment", type=int, default=3, help="seconds per long-run wrk run")
    parser.add_argument("--json", type=Path, help="also write every figure here")
    loop = Settings.model_fields["gateway_loop"]  # the setting's values and default
    parser.add_argument(
        "--loop", choices=get_args(loop.annotation), default=loop.default, help="probeval's loop"
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("bench/gateway.py: wrk is not installed (apt-get install -y wrk)", file=sys.stderr)
        return 2

    tmp = Path(tempfile.mkdtemp(prefix="probeval-gateway-bench-"))
    group = ProcessGroup(tmp / "logs")
    body_file = tmp / "body.json"
    body_file.write_text(json.dumps(BODY))
    figures: dict[str, Any] = {"args": vars(args) | {"json": str(args.json)}, "body": BODY}
    try:
        url = start_redis(group, tmp / "redis", free_port(), appendonly=False)
        store = Store(connect(url), retention_s=7 * 24 * 3600)
        store.heartbeat(MODEL, "bench-worker", "none (benchmark)", ttl_s=1e9)
        env = {
            "PYTHONPATH": str(ROOT),
            "PROBEVAL_REDIS_URL": url,
            "PROBEVAL_API_KEYS": f"bench:{API_KEY}",
            "PROBEVAL_WORKER_TTL_S": "1e9",
            "PROBEVAL_MAX_ACTIVE_JOBS_PER_TENANT": "1000000",  # the setting's upper limit
            "PROBEVAL_GATEWAY_LOOP": args.loop,
        }
        probeval = start_gateway(group, "127.0.0.1", free_port(), env)
        bare_port = free_port()
        bare_proc = group.start(
            "bare",
            [sys.executable, str(ROOT / "bench" / "bare_gateway.py"), "--port", str(bare_port),
             "--redis-url", url],
            env,
        )  # fmt: skip
        bare = f"http://127.0.0.1:{bare_port}"
        wait_until(lambda: http_ok(f"{bare}/healthz"), timeout_s=60, what="bare", proc=bare_proc)
        auth = f"Bearer {API_KEY}"
        targets = {
            "bare": {"base": bare, "auth": "", "pid": bare_proc.pid},
            "probeval": {"base": probeval, "auth": auth, "pid": gateway_pid(group)},
        }
        for name, t in targets.items():  # one job each to poll, and a warm-up
            resp = httpx.post(f"{t['base']}/v1/jobs", json=BODY, headers={"Authorization": auth})
            resp.raise_for_status()
            t["job"] = resp.json()["id"]
            wrk(f"{t['base']}/v1/jobs", method="POST", body_file=str(body_file),
                auth=t["auth"], args=args, duration=2)  # fmt: skip
            print(f"warm-up {name} done", flush=True)

        ceiling = wrk(f"{bare}/ping", method="GET", body_file="", auth="", args=args,
                      pid=bare_proc.pid)  # fmt: skip
        print(f"ceiling (bare GET /ping, no Redis): {short(ceiling)}", flush=True)
        figures["ceiling"] = ceiling

        runs: dict[str, dict[str, list[dict[str, Any]]]] = {
            op: {name: [] for name in targets} for op in ("submit", "poll")
        }
        for round_no in range(1, args.rounds + 1):
            order = ["bare", "probeval"] if round_no % 2 else ["probeval", "bare"]
            for op in ("submit", "poll"):
                for name in order:
                    t = targets[name]
                    if op == "submit":
                        r = wrk(f"{t['base']}/v1/jobs", method="POST", body_file=str(body_file),
                                auth=t["auth"], args=args, pid=t["pid"])  # fmt: skip
                    else:
                        r = wrk(f"{t['base']}/v1/jobs/{t['job']}", method="GET", body_file="",
                                auth=t["auth"], args=args, pid=t["pid"])  # fmt: skip
                    r["round"] = round_no
                    runs[op][name].append(r)
                    print(f"round {round_no} {op:6s} {name:8s} {short(r)}", flush=True)
        figures["runs"] = runs
        summary: dict[str, Any] = {}
        for op in ("submit", "poll"):
            b, p = runs[op]["bare"], runs[op]["probeval"]
            pair_ratios = [pr["rps"] / br["rps"] for br, pr in zip(b, p, strict=True)]
            summary[op] = {
                "bare_cpu_ms_per_request": median_of(b, "server_cpu_ms_per_request"),
                "probeval_cpu_ms_per_request": median_of(p, "server_cpu_ms_per_request"),
                "bare_rps": median_of(b, "rps"),
                "probeval_rps": median_of(p, "rps"),
                "bare_p99_ms": median_of(b, "p99_us") / 1000,
                "probeval_p99_ms": median_of(p, "p99_us") / 1000,
                "bare_p50_ms": median_of(b, "p50_us") / 1000,
                "probeval_p50_ms": median_of(p, "p50_us") / 1000,
                "rps_ratio_of_medians": median_of(p, "rps") / median_of(b, "rps"),
                "rps_ratio_per_round": pair_ratios,
                "p99_ratio_of_medians": median_of(p, "p99_us") / median_of(b, "p99_us"),
            }
        figures["summary"] = summary
        print(json.dumps(summary, indent=2), flush=True)

        # Long run: from an empty Redis to --long-jobs stored jobs. Each probeval run is
        # followed by a bare run of the same length, the control for the machine's load.
        store.r.flushdb()
        store.heartbeat(MODEL, "bench-worker", "none (benchmark)", ttl_s=1e9)
        segments = []
        stored = 0
        while stored < args.long_jobs:
            r = wrk(f"{probeval}/v1/jobs", method="POST", body_file=str(body_file), auth=auth,
                    args=args, duration=args.segment, pid=targets["probeval"]["pid"])  # fmt: skip
            r["stored_before"] = stored
            stored = int(store.r.zcard(keys.JOBS_INDEX))
            r["stored_after"] = stored
            control = wrk(f"{bare}/v1/jobs", method="POST", body_file=str(body_file), auth="",
                          args=args, duration=args.segment, pid=bare_proc.pid)  # fmt: skip
            r["bare_rps"] = control["rps"]
            r["ratio"] = r["rps"] / control["rps"]
            segments.append(r)
            print(
                f"long run: {r['stored_before']:6d} -> {stored:6d} jobs  {short(r)}"
                f"  bare {control['rps']:.1f} req/s  ratio {r['ratio']:.2f}",
                flush=True,
            )
        if segments:  # --long-jobs 0 skips the long run
            third = max(1, len(segments) // 3)
            first, last = segments[:third], segments[-third:]
            figures["long_run"] = {
                "segments": segments,
                "first_third_rps": median_of(first, "rps"),
                "last_third_rps": median_of(last, "rps"),
                "first_third_ratio": median_of(first, "ratio"),
                "last_third_ratio": median_of(last, "ratio"),
                "first_third_cpu_ms": median_of(first, "server_cpu_ms_per_request"),
                "last_third_cpu_ms": median_of(last, "server_cpu_ms_per_request"),
                "queued_chunks": int(store.r.llen(keys.rq_queue_list(keys.sample_queue(MODEL)))),
            }
            lr = figures["long_run"]
            print(
                f"long run: {stored} jobs stored, {lr['queued_chunks']} chunks queued; first third "
                f"{lr['first_third_rps']:.1f} req/s (x{lr['first_third_ratio']:.2f} bare, "
                f"{lr['first_third_cpu_ms']:.3f} ms CPU/req), last third {lr['last_third_rps']:.1f} "
                f"req/s (x{lr['last_third_ratio']:.2f} bare, {lr['last_third_cpu_ms']:.3f} ms CPU/req)",
                flush=True,
            )
        figures["load_average_end"] = os.getloadavg()
        figures["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(figures, indent=2))
    finally:
        group.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
