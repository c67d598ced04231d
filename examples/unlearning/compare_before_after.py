"""The shipped model before unlearning (models/tiny-base) against after (models/tiny-unlearned)
on the forget set, through the whole service: a private redis-server, the gateway, a scorer and
one vLLM sampler per model, then ``probeval compare`` on the two jobs. This is the run behind
the README's comparison table.

    .venv/bin/python examples/unlearning/compare_before_after.py --n 256 [--json-out FILE]

Prints the table of ``probeval compare A B --target p_full --family holm`` (P(a draw contains
the whole answer), Holm over the forget set at alpha) and the planner's price of certifying
P(leak) < 1% per forget question on the live unlearned model. Exit code 0 when every job
succeeded.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from probeval.commands.demo import load_questions
from probeval.local import LocalStack, free_port, probeval_argv, say, start_sampler

ROOT = Path(__file__).resolve().parents[2]
BEFORE, AFTER = ROOT / "models" / "tiny-base", ROOT / "models" / "tiny-unlearned"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=256, help="draws per question (default 256)")
    p.add_argument("--alpha", type=float, default=0.01, help="error level (default 0.01)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed of both jobs (default 0)")
    p.add_argument("--json-out", type=Path, help="also write the CompareResponse and the plan")
    p.add_argument("--state-dir", type=Path, help="logs and Redis data (default: a temp dir)")
    return p.parse_args(argv)


def submit(c: httpx.Client, model: str, prompts: list[dict[str, Any]], args: Any) -> str:
    body = {
        "model": model,
        "prompts": prompts,
        "sampling": {"n": args.n, "temperature": 1.0, "max_tokens": 24, "seed": args.seed},
        "scorer": {"name": "rouge_l_recall"},
        "alpha": args.alpha,
        "family": "holm",
    }
    resp = c.post("/v1/jobs", json=body)
    resp.raise_for_status()
    return str(resp.json()["id"])


def wait(c: httpx.Client, stack: LocalStack, job_ids: list[str]) -> None:
    while True:
        views = [c.get(f"/v1/jobs/{j}").json() for j in job_ids]
        if all(v["status"] in ("succeeded", "failed", "cancelled") for v in views):
            bad = [v for v in views if v["status"] != "succeeded"]
            if bad:
                raise RuntimeError(f"a job did not succeed: {bad}")
            return
        stack.check_alive()
        time.sleep(1.0)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    forget = load_questions(AFTER)["forget"]
    state = args.state_dir or Path(tempfile.mkdtemp(prefix="probeval-compare-"))
    with LocalStack(state) as stack:
        # Two engines on one host: each gets a tenth of the memory for its KV cache; float32
        # because vLLM's "auto" would run these float32 checkpoints in bfloat16 on a CPU.
        for key, value in (
            ("PROBEVAL_ENGINE_MEMORY_FRACTION", "0.1"),
            ("PROBEVAL_ENGINE_DTYPE", "float32"),
            ("PROBEVAL_ENGINE_ENFORCE_EAGER", "true"),
        ):
            stack.env[key] = os.environ.get(key, value)
        url = stack.redis()
        base = stack.services(str(AFTER), "tiny-unlearned", "127.0.0.1", free_port())
        start_sampler(stack.group, str(BEFORE), stack.env, name="tiny-base", proc_name="sampler-b")
        say("loading both models (vLLM start-up takes ~30 s each on a CPU)")
        stack.wait_for_model(url, "tiny-unlearned")
        stack.wait_for_model(url, "tiny-base")
        with httpx.Client(base_url=base, timeout=120) as c:
            a = submit(c, "tiny-base", forget, args)
            b = submit(c, "tiny-unlearned", forget, args)
            say(f"forget set, {len(forget)} questions x {args.n} draws: before {a}, after {b}")
            wait(c, stack, [a, b])
            flags = ["--target", "p_full", "--family", "holm", "--alpha", str(args.alpha)]
            table = subprocess.run(
                probeval_argv("compare", *flags, "--url", base, a, b),
                capture_output=True, text=True, check=False, env={**os.environ, **stack.env},
            )  # fmt: skip
            print(table.stdout, end="")
            if table.returncode != 0:
                print(table.stderr, file=sys.stderr, end="")
                return table.returncode
            body = {"a": a, "b": b, "target": "p_full", "family": "holm", "alpha": args.alpha}
            comparison = c.post("/v1/compare", json=body).json()
            plan = c.post(
                "/v1/plan",
                json={"target": "certify", "tau": 0.01, "alpha": args.alpha,
                      "prompts": len(forget), "model": "tiny-unlearned"},
            ).json()  # fmt: skip
            cost = plan["cost"]
            print(
                f"\nPlan: certifying P(leak) < 1% at alpha = {args.alpha:g} needs n = {plan['n']} "
                f"draws per question (zero leaks): {plan['draws_total']} for the forget set"
                + (
                    f", ~{cost['expected_s']:.1f} s of engine time on the live tiny-unlearned "
                    f"sampler at its measured {cost['draws_per_s_per_worker']:.0f} draws/s."
                    if cost["expected_s"] is not None
                    else " (no throughput measured yet)."
                )
            )
            if args.json_out:
                args.json_out.write_text(json.dumps({"compare": comparison, "plan": plan}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
