"""Adaptive vs fixed-n sampling on the demo's forget and retain sets, and the per-round update cost.

    .venv/bin/python bench/adaptive.py [--model models/tiny-unlearned] [--n 1024]
        [--threshold 0.01] [--round 32] [--alpha 0.01] [--max-tokens 24] [--futility F]
        [--part all|update|jobs] [--out reports/bench-adaptive.json]

jobs: a private redis-server, the gateway, one vLLM sampler and one scorer (as ``probeval up``
starts them) on the shipped model; for each set (forget, retain) a fixed-n job (``sampling.n``
= n) and an adaptive job (``stopping``: target p_full = P(ROUGE-L recall = 1), the threshold,
min_n = round, max_n = n), same alpha, same seed, timed from POST to ``succeeded`` (the job's
``updated_at``), run one after the other (fixed, adaptive, per set) so each pair sees the same
machine load. Decisions of the fixed run: "above" when its one-sided Clopper-Pearson lower bound
(1 - alpha) on P(score = 1) is above the threshold, "below" when its upper one is below, else
"undecided" (each a valid fixed-n test at level alpha); the adaptive run's come from its
confidence sequence. Reported: draws used, wall time, decisions side by side, and the prompts
where the two disagree (opposite decisions would be an error of one of them). With
``--futility F`` each set also runs a third job, adaptive with the opt-in futility stop
(``stopping.futility`` = F), reported beside the plain adaptive one (``adaptive_futility``).

update: the cost of folding one round of 64 draws into a stream that already holds t draws, for
t from 64 to 8,192, for the Beta-mixture target (p_full) and the betting target (mean): median
of many timed calls of ``shared.stats.stopping.advance`` plus the stored state's JSON
round trip, and the stored state's size. Flat in t is the claim (O(round), not O(t)). Also
the cost of the futility check (``shared.stats.stopping.futile``) on an open p_full threshold
stream (tau = 0.01, max_n = 1,024, S = round(0.01 t) events) at several t: it runs over the
draws left, so it falls with t.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from shared.stats.sequential import MixtureState, mixture_update, threshold_prior  # noqa: E402
from shared.stats.stopping import (  # noqa: E402
    StoppingRule,
    StreamState,
    advance,
    futile,
    round_end,
    start_stream,
)


def update_costs(repeats: int = 30) -> list[dict[str, Any]]:
    out = []
    rng = np.random.default_rng(0)
    for target in ("p_full", "mean"):
        rule = StoppingRule(
            target=target,  # type: ignore[arg-type]
            threshold=None,
            width=1e-9,  # never stops: we only time the update
            min_n=64,
            max_n=10**6,
            round=64,
        )
        x = (rng.random(8192 + 64) < 0.3).astype(np.float64)
        state = start_stream(rule)
        checkpoints = {64, 256, 1024, 4096, 8192}
        while state.n < 8192:
            end = round_end(rule, state.n)
            state = advance(state, rule, x[state.n : end], 0.01)
            if state.n in checkpoints:
                text = state.to_json()
                chunk = x[state.n : state.n + 64]
                times = []
                for _ in range(repeats):
                    t0 = time.perf_counter()
                    s = StreamState.from_json(text)
                    advance(s, rule, chunk, 0.01).to_json()
                    times.append(time.perf_counter() - t0)
                out.append({
                    "target": target,
                    "draws_so_far": state.n,
                    "round": 64,
                    "median_ms": round(1e3 * statistics.median(times), 3),
                    "state_bytes": len(text),
                })  # fmt: skip
    return out


def futility_costs(repeats: int = 30) -> list[dict[str, Any]]:
    """Median time of one futility check on an open stream at tau = 0.01, max_n = 1,024."""
    rule = StoppingRule(
        target="p_full", threshold=0.01, width=None, min_n=16, max_n=1024, round=16, futility=0.05
    )
    out = []
    for t in (16, 64, 256, 512, 768, 1008):
        events = np.zeros(t, dtype=bool)
        events[np.linspace(0, t - 1, round(0.01 * t), dtype=int)] = True
        mixture, _, _ = mixture_update(MixtureState(prior=threshold_prior(0.01)), events, 0.01)
        state = StreamState(n=t, mixture=mixture, betting=None)
        futile(rule, state, 0.01)  # the rule's lattice is computed once per process
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            verdict = futile(rule, state, 0.01)
            times.append(time.perf_counter() - t0)
        out.append({
            "check": "futility", "draws_so_far": t, "events": int(events.sum()),
            "futile": verdict, "median_ms": round(1e3 * statistics.median(times), 3),
            "max_ms": round(1e3 * max(times), 3),
        })  # fmt: skip
    return out


def clopper_pearson_decision(k: int, n: int, alpha: float, threshold: float) -> str:
    from shared.stats import clopper_pearson

    cp = clopper_pearson(np.array([k]), np.array([n]), alpha=alpha)
    if float(cp.lower[0]) > threshold:
        return "above"
    if float(cp.upper[0]) < threshold:
        return "below"
    return "undecided"


def compare(
    fixed: dict[str, Any], adaptive: dict[str, Any], args: argparse.Namespace
) -> dict[str, Any]:
    """One adaptive run against the fixed-n run of the same set: draws, wall, decisions."""
    rows = []
    for pf, pa in zip(fixed["results"]["prompts"], adaptive["results"]["prompts"], strict=True):
        fs = pf["full_score"]
        seq = pa["sequential"]
        rows.append({
            "id": pf["id"],
            "fixed_k": fs["k"],
            "fixed_decision": clopper_pearson_decision(fs["k"], pf["n"], args.alpha, args.threshold),
            "adaptive_n_used": seq["n_used"],
            "adaptive_decision": seq["decision"],
            "adaptive_reason": seq["reason"],
            "adaptive_lower": seq["lower"],
            "adaptive_upper": seq["upper"],
        })  # fmt: skip
    opposite = [
        r["id"] for r in rows if {r["fixed_decision"], r["adaptive_decision"]} == {"above", "below"}
    ]
    changed = [
        r["id"]
        for r in rows
        if r["fixed_decision"] != "undecided"
        and r["adaptive_decision"] not in (r["fixed_decision"], "undecided")
    ]
    return {
        **{k: v for k, v in adaptive.items() if k != "results"},
        "draws_ratio": round(fixed["draws"] / adaptive["draws"], 2),
        "wall_ratio": round(fixed["wall_s"] / max(adaptive["wall_s"], 1e-9), 2),
        "decisions": {
            kind: {
                d: sum(1 for r in rows if r[f"{kind}_decision"] == d)
                for d in ("above", "below", "undecided")
            }
            for kind in ("fixed", "adaptive")
        },
        "reasons": {
            reason: sum(1 for r in rows if r["adaptive_reason"] == reason)
            for reason in sorted({r["adaptive_reason"] for r in rows})
        },
        "opposite_decisions": opposite,
        "fixed_decided_adaptive_differs": changed,
        "fixed_decided_adaptive_undecided": [
            r["id"]
            for r in rows
            if r["fixed_decision"] != "undecided" and r["adaptive_decision"] == "undecided"
        ],
        "rows": rows,
    }


def run_jobs(args: argparse.Namespace) -> dict[str, Any]:
    import httpx

    from probeval.commands.demo import load_questions
    from probeval.local import LocalStack, free_port

    splits = load_questions(args.model)
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp, LocalStack(Path(tmp)) as stack:
        stack.env["PROBEVAL_ENGINE_DTYPE"] = "float32"
        url = stack.redis()
        base = stack.services(str(args.model), args.model.name, "127.0.0.1", free_port())
        stack.wait_for_model(url, args.model.name)
        with httpx.Client(base_url=base, timeout=60) as c:
            for name in ("forget", "retain"):
                body: dict[str, Any] = {
                    "model": args.model.name,
                    "prompts": splits[name],
                    "sampling": {
                        "temperature": 1.0,
                        "max_tokens": args.max_tokens,
                        "seed": 1234,
                    },
                    "scorer": {"name": "rouge_l_recall"},
                    "alpha": args.alpha,
                    "greedy": False,
                }
                fixed = {**body, "sampling": {**body["sampling"], "n": args.n}}
                adaptive = {
                    **body,
                    "stopping": {
                        "target": "p_full",
                        "threshold": args.threshold,
                        "min_n": args.round,
                        "max_n": args.n,
                        "round": args.round,
                    },
                }
                jobs = [("fixed", fixed), ("adaptive", adaptive)]
                if args.futility is not None:
                    stop = {**adaptive["stopping"], "futility": args.futility}
                    jobs.append(("adaptive_futility", {**adaptive, "stopping": stop}))
                runs = {}
                for kind, job in jobs:
                    t0 = time.time()
                    resp = c.post("/v1/jobs", json=job)
                    resp.raise_for_status()
                    jid = resp.json()["id"]
                    while True:
                        view = c.get(f"/v1/jobs/{jid}").json()
                        if view["status"] in ("succeeded", "failed", "cancelled"):
                            break
                        stack.check_alive()
                        time.sleep(1.0)
                    if view["status"] != "succeeded":
                        raise RuntimeError(f"{kind} {name} job ended {view['status']}: {view}")
                    results = c.get(f"/v1/jobs/{jid}/results").json()
                    runs[kind] = {
                        "wall_s": round(view["updated_at"] - t0, 1),
                        "draws": view["progress"]["samples_done"],
                        "results": results,
                    }
                out[name] = {"prompts": len(splits[name])}
                for kind in [k for k, _ in jobs if k != "fixed"]:
                    out[name][kind] = compare(runs["fixed"], runs[kind], args)
                out[name]["fixed"] = {k: v for k, v in runs["fixed"].items() if k != "results"}
                print(json.dumps({
                    name: {
                        k: ({kk: vv for kk, vv in v.items() if kk != "rows"} if isinstance(v, dict) else v)
                        for k, v in out[name].items()
                    }
                }))  # fmt: skip
    kinds = [k for k in out["forget"] if k.startswith("adaptive")]
    out["both"] = {
        kind: {
            "fixed_draws": sum(out[s]["fixed"]["draws"] for s in ("forget", "retain")),
            "draws": sum(out[s][kind]["draws"] for s in ("forget", "retain")),
            "fixed_wall_s": round(sum(out[s]["fixed"]["wall_s"] for s in ("forget", "retain")), 1),
            "wall_s": round(sum(out[s][kind]["wall_s"] for s in ("forget", "retain")), 1),
        }
        for kind in kinds
    }
    for v in out["both"].values():
        v["draws_ratio"] = round(v["fixed_draws"] / v["draws"], 2)
    print(json.dumps({"both": out["both"]}))
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", type=Path, default=ROOT / "models" / "tiny-unlearned")
    p.add_argument("--n", type=int, default=1024)
    p.add_argument("--threshold", type=float, default=0.01)
    p.add_argument("--round", type=int, default=32)
    p.add_argument("--alpha", type=float, default=0.01)
    p.add_argument("--max-tokens", type=int, default=24)
    p.add_argument(
        "--futility", type=float, default=None, help="also run adaptive with stopping.futility"
    )
    p.add_argument("--part", choices=("all", "update", "jobs"), default="all")
    p.add_argument("--out", type=Path, default=ROOT / "reports" / "bench-adaptive.json")
    args = p.parse_args()
    doc: dict[str, Any] = {"args": {k: str(v) for k, v in vars(args).items()}}
    if args.part in ("all", "update"):
        doc["update"] = update_costs() + futility_costs()
        for row in doc["update"]:
            print(json.dumps(row))
    if args.part in ("all", "jobs"):
        doc["jobs"] = run_jobs(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
