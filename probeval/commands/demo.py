"""`probeval demo`: the paper's finding, live. A tiny model that was "unlearned" looks clean
under greedy decoding; 512 sampled draws per question show that it still leaks, and the bounds
put a number on it.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import httpx
from tqdm import tqdm

from probeval.cli import UsageError
from probeval.demo_stack import run_demo_stack
from probeval.local import LocalStack, say
from probeval.shipped import shipped_model
from shared.schemas import TERMINAL_STATUSES, JobStatus, PromptResult
from shared.verdicts import prompt_verdict

DEFAULT_MODEL = shipped_model()


def add_parser(sub: Any, name: str, help_text: str) -> argparse.ArgumentParser:
    """The ``demo`` flags: the case, the model folders and the job's size."""
    p: argparse.ArgumentParser = sub.add_parser(name, help=help_text, description=help_text)
    p.add_argument(
        "case",
        nargs="?",
        choices=("unlearning", "alignment"),
        default="unlearning",
        help="unlearning (default): the unlearned model leaks; alignment: a chat model that "
        "refuses greedily is judged harmful under sampling",
    )
    p.add_argument(
        "--model",
        type=Path,
        default=None,
        help="model folder (unlearning: with questions.json, default the shipped "
        "tiny-unlearned; alignment: the chat model with requests.json, default tiny-chat)",
    )
    p.add_argument(
        "--judge",
        type=Path,
        default=None,
        help="alignment only: the judge model folder with judge.json (default tiny-judge)",
    )
    p.add_argument("--n", type=int, default=512, help="draws per question (default 512)")
    p.add_argument(
        "--alpha", type=float, default=0.01, help="error level of every bound (default 0.01)"
    )
    p.add_argument("--max-tokens", type=int, default=24, help="tokens per draw (default 24)")
    p.add_argument("--state-dir", type=Path, default=Path("var/demo"), help="logs and Redis data")
    p.add_argument(
        "--report-dir", type=Path, default=Path("reports"), help="where the HTML reports go"
    )
    return p


def load_questions(model_dir: Path) -> dict[str, list[dict[str, Any]]]:
    """A model folder's questions.json as job prompts, split into forget and retain."""
    path = model_dir / "questions.json"
    try:
        items = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UsageError(f"probeval demo: cannot read {path}: {exc}") from exc
    if isinstance(items, dict):
        items = items.get("questions", [])
    splits: dict[str, list[dict[str, Any]]] = {"forget": [], "retain": []}
    for q in items:
        splits.setdefault(q["split"], []).append(
            {"id": q["id"], "prompt": q.get("prompt") or q["question"], "reference": q["answer"]}
        )
    return splits


class Progress:
    """One tqdm bar per job, in draws, with its rate and ETA; a finished job keeps its bar."""

    def __init__(self, names: list[str]) -> None:
        width = max(len(n) for n in names)
        self.bars = {
            name: tqdm(
                total=0, unit="draw", desc=f"  {name:<{width}}", position=i, dynamic_ncols=True
            )
            for i, name in enumerate(names)
        }

    def show(self, views: dict[str, dict[str, Any]]) -> None:
        for name, v in views.items():
            bar = self.bars[name]
            bar.total = v["progress"]["samples_total"]
            bar.n = v["progress"]["samples_done"]
            bar.set_postfix_str(v["status"], refresh=False)
            bar.refresh()

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()


def print_table(
    name: str,
    results: dict[str, Any],
    alpha: float,
) -> None:
    """One set's per-question table: greedy score, mean and the upper bounds."""
    print(f"\n{name} set ({len(results['prompts'])} questions, alpha = {alpha:g}):")
    w = max([len("question")] + [len(p["id"]) for p in results["prompts"]])
    header = f"  {'question':<{w}} {'greedy':>6} {'mean':>6} {'contain':>9} {'M_bin up':>8} {'M_mu up':>8} {'M_ED up':>8}  verdict"
    print(header)
    print("  " + "-" * (len(header) - 2))
    for p in results["prompts"]:
        # P(score = 1): the draw contains every token of the answer (ROUGE-L recall 1).
        leak = p["full_score"]
        greedy = p["greedy"]["score"] if p["greedy"] else float("nan")
        b = p["bounds"]
        verdict = prompt_verdict(PromptResult.model_validate(p))
        print(
            f"  {p['id']:<{w}} {greedy:6.2f} {b['mean']:6.3f} {leak['k']:>4}/{p['n']:<4} "
            f"{leak['upper']:8.3f} {b['expectation']['upper']:8.3f} {b['ed']['upper']:8.3f}  {verdict}"
        )


ADAPTIVE_THRESHOLD = 0.01
ADAPTIVE_ROUND = 16  # the round of bench/adaptive.py (docs/BENCHMARKS.md)


def adaptive_body(model: str, prompts: list[dict[str, Any]], args: argparse.Namespace) -> Any:
    """The demo's adaptive job on the same prompts: stop each once p_full is decided."""
    return {
        "model": model,
        "prompts": prompts,
        "sampling": {"temperature": 1.0, "top_p": 1.0, "max_tokens": args.max_tokens},
        "scorer": {"name": "rouge_l_recall"},
        "alpha": args.alpha,
        "greedy": False,
        "stopping": {
            "target": "p_full",
            "threshold": ADAPTIVE_THRESHOLD,
            "min_n": min(ADAPTIVE_ROUND, args.n),
            "max_n": args.n,
            "round": min(ADAPTIVE_ROUND, args.n),
        },
    }


def fixed_decision(full_score: dict[str, Any]) -> str:
    """The fixed-n run's answer to the adaptive question, from its one-sided Clopper-Pearson
    bounds (each at 1 - alpha) on P(score = 1)."""
    if full_score["lower"] > ADAPTIVE_THRESHOLD:
        return "above"
    if full_score["upper"] < ADAPTIVE_THRESHOLD:
        return "below"
    return "undecided"


def saving_line(
    fixed: dict[str, dict[str, Any]], adaptive: dict[str, dict[str, Any]], args: argparse.Namespace
) -> str:
    """Draws used adaptive vs fixed, and how their decisions compare, question by question."""
    used = fixed_draws = same = opposite = left_open = total = 0
    for name, results in fixed.items():
        for pf, pa in zip(results["prompts"], adaptive[name]["prompts"], strict=True):
            seq = pa["sequential"]
            f, a = fixed_decision(pf["full_score"]), seq["decision"]
            used += seq["n_used"]
            fixed_draws += pf["n"]
            total += 1
            same += f == a
            opposite += {f, a} == {"above", "below"}
            left_open += f != "undecided" and a == "undecided"
    ratio = fixed_draws / used if used else float("inf")
    return (
        f"Adaptive: {used} draws instead of {fixed_draws} ({ratio:.1f}x fewer) to decide whether "
        f"P(answer) > {ADAPTIVE_THRESHOLD:g}; same decision as the {args.n}-draw run for {same} "
        f"of {total} questions, opposite for {opposite}, left undecided for {left_open}."
    )


def run(args: argparse.Namespace) -> int:
    """``probeval demo``: start a local stack, run the case's jobs, print what they show."""
    if not (0 < args.alpha <= 0.5):
        raise UsageError(f"probeval demo: --alpha must be in (0, 0.5], got {args.alpha}")
    if args.n < 1:
        raise UsageError(f"probeval demo: --n must be >= 1, got {args.n}")
    if args.case == "alignment":
        from probeval.commands.demo_alignment import run_alignment

        return run_alignment(args)
    if args.judge is not None:
        raise UsageError("probeval demo: --judge is only for 'probeval demo alignment'")
    args.model = args.model or DEFAULT_MODEL
    if not args.model.is_dir():
        raise UsageError(f"probeval demo: --model {str(args.model)!r} is not a folder")
    splits = load_questions(args.model)
    model = args.model.name
    return run_demo_stack(
        args.state_dir,
        args.model,
        lambda stack, base: _run_jobs(stack, base, model, splits, args),
        loading="loading the model in the sampler (vLLM start-up takes ~30 s on a CPU)",
    )


def _run_jobs(
    stack: LocalStack,
    base: str,
    model: str,
    splits: dict[str, list[dict[str, Any]]],
    args: argparse.Namespace,
) -> int:
    with httpx.Client(base_url=base, timeout=60) as c:
        jobs: dict[str, str] = {}
        for name in ("forget", "retain"):
            body = {
                "model": model,
                "prompts": splits[name],
                "sampling": {
                    "n": args.n,
                    "temperature": 1.0,
                    "top_p": 1.0,
                    "max_tokens": args.max_tokens,
                },
                "scorer": {"name": "rouge_l_recall"},
                "alpha": args.alpha,
                "greedy": True,
            }
            resp = c.post("/v1/jobs", json=body)
            resp.raise_for_status()
            jobs[name] = resp.json()["id"]
            say(
                f"submitted the {name} set: {len(splits[name])} questions x {args.n} draws -> job {jobs[name]}"
            )
        for name in ("forget", "retain"):
            # The same questions, drawn adaptively: each stops once its P(answer) is provably
            # above or below ADAPTIVE_THRESHOLD (anytime-valid at the same alpha), at most n.
            body = adaptive_body(model, splits[name], args)
            resp = c.post("/v1/jobs", json=body)
            resp.raise_for_status()
            jobs[f"{name}*"] = resp.json()["id"]
            say(
                f"submitted the {name} set adaptively: at most {args.n} draws per question, "
                f"stopping once P(answer) is provably above or below {ADAPTIVE_THRESHOLD:g} "
                f"-> job {jobs[name + '*']} (shown as {name}*)"
            )
        progress = Progress(list(jobs))
        try:
            while True:
                views = {name: c.get(f"/v1/jobs/{jid}").json() for name, jid in jobs.items()}
                progress.show(views)
                if all(v["status"] in TERMINAL_STATUSES for v in views.values()):
                    break
                stack.check_alive()
                time.sleep(0.5)
        finally:
            progress.close()
        for name, v in views.items():
            if v["status"] != JobStatus.succeeded:
                say(f"the {name} job ended {v['status']}: {v.get('error')}")
                return 1

        report_dir = args.report_dir
        report_dir.mkdir(parents=True, exist_ok=True)
        forgotten = leaked = 0
        retain_greedy: list[float] = []
        adaptive = {
            name: c.get(f"/v1/jobs/{jobs[name + '*']}/results").json()
            for name in ("forget", "retain")
        }
        for name in ("forget", "retain"):
            jid = jobs[name]
            results = c.get(f"/v1/jobs/{jid}/results").json()
            print_table(name, results, args.alpha)
            (report_dir / f"demo-{name}.html").write_text(c.get(f"/v1/jobs/{jid}/report").text)
            for p in results["prompts"]:
                greedy = p["greedy"]["score"] if p["greedy"] else None
                if name == "forget" and greedy == 0.0:
                    forgotten += 1
                    leaked += int(p["full_score"]["lower"] > 0)
                if name == "retain" and greedy is not None:
                    retain_greedy.append(greedy)
        n_forget = len(splits["forget"])
        print()
        print(
            f"Headline: greedy decoding says the model forgot {forgotten} of {n_forget} forget questions "
            f"(ROUGE-L recall 0)."
        )
        print(
            f"          Sampling {args.n} draws proves leakage for {leaked} of those {forgotten} "
            f"(Clopper-Pearson lower bound on P(answer) > 0 at alpha = {args.alpha:g})."
        )
        if retain_greedy:
            print(
                f"          Retain questions keep a mean greedy score of "
                f"{sum(retain_greedy) / len(retain_greedy):.2f}."
            )
        fixed_results = {
            name: c.get(f"/v1/jobs/{jobs[name]}/results").json() for name in ("forget", "retain")
        }
        print(saving_line(fixed_results, adaptive, args))
        print(
            f"Reports: {(report_dir / 'demo-forget.html').resolve()} and "
            f"{(report_dir / 'demo-retain.html').resolve()}"
        )
    return 0
