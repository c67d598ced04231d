"""The job commands, on ``probeval.client``: submit, jobs, status, results, export, cancel,
rescore. The gateway is PROBEVAL_URL (or --url), the key PROBEVAL_API_KEY.

Exit codes: 0 done (a waited-for job succeeded); 1 the job ended failed or cancelled, or the
gateway could not be reached; 2 bad input: a bad flag or job file, or a 4xx answer of the
gateway (one line on stderr naming the field and the allowed values).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import yaml
from pydantic import ValidationError

from probeval.cli import UsageError
from probeval.client import EXPORT_FORMATS, ApiError, Client
from probeval.model_flags import add_model_flags, model_from_flags
from shared.schemas import BoundsOptions, JobCreate, JobResults, JobStatus, parse_scorer

RESULT_FORMATS = ("table", "json", "csv")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", default=None, help="gateway base URL (default: PROBEVAL_URL)")


def _job_id(p: argparse.ArgumentParser) -> None:
    p.add_argument("job_id", metavar="ID", help="the job's id")


def _wait_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--wait", action="store_true", help="wait for the end, with a progress bar")
    p.add_argument(
        "--format", choices=RESULT_FORMATS, default="table", help="results output with --wait"
    )


def add_parser(sub: Any, name: str, help_text: str) -> None:
    """The flags of one job command (submit, jobs, status, results, export, ...)."""
    p: argparse.ArgumentParser = sub.add_parser(name, help=help_text, description=help_text)
    _common(p)
    if name == "submit":
        p.add_argument(
            "file", metavar="FILE", type=Path, help="job file: .json, .yaml or .yml (JobCreate)"
        )
        _wait_flags(p)
    elif name == "jobs":
        p.add_argument("--status", choices=[s.value for s in JobStatus], default=None)
        p.add_argument("--model", default=None)
        p.add_argument("--limit", type=int, default=20, help="most jobs shown (default 20)")
    elif name in ("status", "cancel"):
        _job_id(p)
        if name == "cancel":
            p.add_argument("--purge", action="store_true", help="also delete all its data")
    elif name == "results":
        _job_id(p)
        p.add_argument("--format", choices=RESULT_FORMATS, default="table")
    elif name == "export":
        _job_id(p)
        p.add_argument("--format", choices=EXPORT_FORMATS, required=True)
        p.add_argument(
            "--table",
            choices=("draws", "results"),
            default="draws",
            help="parquet only: the draws (default) or the results table",
        )
        p.add_argument("-o", "--output", required=True, type=Path, help="file to write")
    elif name == "rescore":
        _job_id(p)
        p.add_argument("--scorer", required=True, help="scorer name, e.g. exact_match")
        p.add_argument("--pattern", default=None, help="regular expression for scorer regex")
        add_model_flags(p, BoundsOptions)
        # Options left out are the source job's: mark them as not given.
        for action in p._actions:
            if action.dest in BoundsOptions.model_fields:
                action.default = None
        _wait_flags(p)


def _load_job_file(path: Path, prog: str) -> JobCreate:
    if path.suffix not in (".json", ".yaml", ".yml"):
        raise UsageError(f"{prog}: {path}: allowed job files are .json, .yaml and .yml")
    try:
        text = path.read_text()
        doc = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError) as exc:
        raise UsageError(f"{prog}: cannot read {path}: {' '.join(str(exc).split())}") from None
    if not isinstance(doc, dict):
        raise UsageError(f"{prog}: {path} must hold one job object (JobCreate)")
    try:
        return JobCreate.model_validate(doc)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"]).lstrip(".")
        raise UsageError(f"{prog}: {path}: {loc or 'job'}: {err['msg']}") from None


def _print_results(client: Client, job_id: str, fmt: str) -> None:
    if fmt == "csv":
        sys.stdout.write(client.http.get(f"/v1/jobs/{job_id}/results.csv").text)
        return
    results = client.results(job_id)
    if fmt == "json":
        print(results.model_dump_json(by_alias=True, indent=2))
    else:
        print_results_table(results)


def print_results_table(results: JobResults) -> None:
    """A job's results as a terminal table, one row per prompt."""
    print(
        f"job {results.id} ({results.status.value}), alpha = {results.alpha:g}"
        + (f", draws of job {results.source_job}" if results.source_job else "")
    )
    width = max([6] + [len(p.id) for p in results.prompts])
    head = (
        f"{'prompt':<{width}} {'n':>6} {'greedy':>6} {'mean':>6} {'mean lo':>7} "
        f"{'mean up':>7} {'ED up':>6} {'P(1) k':>7} {'P(1) up':>7}"
    )
    print(head)
    print("-" * len(head))
    for p in results.prompts:
        greedy = f"{p.greedy.score:6.2f}" if p.greedy else f"{'-':>6}"
        b, full, seq = p.bounds, p.full_score, p.sequential
        if b is not None and full is not None:
            print(
                f"{p.id:<{width}} {p.n:>6} {greedy} {b.mean:6.3f} {b.expectation.lower:7.3f} "
                f"{b.expectation.upper:7.3f} {b.ed.upper:6.3f} {full.k:>7} {full.upper:7.3f}"
            )
        elif seq is not None:
            # Adaptive: only the bounds valid under optional stopping exist.
            print(
                f"{p.id:<{width}} {seq.n_used:>6} {greedy} {seq.mean:6.3f}  {seq.target} in "
                f"[{seq.lower:.3f}, {seq.upper:.3f}] (anytime): {seq.decision}, {seq.reason}"
            )


def _finish(client: Client, job_id: str, args: argparse.Namespace) -> int:
    """With --wait: follow the job with a bar on stderr, then print its results."""
    if not args.wait:
        return 0
    view = client.wait(job_id, progress=True)
    if view.status != JobStatus.succeeded:
        detail = f": {view.error.message}" if view.error else ""
        print(f"probeval: job {job_id} ended {view.status.value}{detail}", file=sys.stderr)
        return 1
    _print_results(client, job_id, args.format)
    return 0


def _submit(client: Client, args: argparse.Namespace) -> int:
    spec = _load_job_file(args.file, "probeval submit")
    job_id = client.submit(spec).id
    print(job_id, flush=True)
    return _finish(client, job_id, args)


def _jobs(client: Client, args: argparse.Namespace) -> int:
    if args.limit < 1 or args.limit > 200:
        raise UsageError(f"probeval jobs: --limit must be in 1..200, got {args.limit}")
    page = client.list(status=args.status, model=args.model, limit=args.limit)
    print(f"{'id':<32}  {'status':<9}  {'model':<16} {'prompts':>7}  {'draws':>17}")
    for job in page.jobs:
        draws = f"{job.progress.samples_done}/{job.progress.samples_total}"
        print(f"{job.id:<32}  {job.status.value:<9}  {job.model:<16} {job.prompts:>7}  {draws:>17}")
    if page.next_after:
        print(f"(more: the API's GET /v1/jobs?after={page.next_after})", file=sys.stderr)
    return 0


def _status(client: Client, args: argparse.Namespace) -> int:
    print(client.get(args.job_id).model_dump_json(indent=2))
    return 0


def _results(client: Client, args: argparse.Namespace) -> int:
    _print_results(client, args.job_id, args.format)
    return 0


def _export(client: Client, args: argparse.Namespace) -> int:
    path = client.export(args.job_id, args.output, format=args.format, table=args.table)
    print(path, file=sys.stderr)
    return 0


def _cancel(client: Client, args: argparse.Namespace) -> int:
    view = client.cancel(args.job_id, purge=args.purge)
    print(f"{args.job_id} purged" if view is None else f"{view.id} {view.status.value}")
    return 0


def _rescore(client: Client, args: argparse.Namespace) -> int:
    prog = "probeval rescore"
    try:
        given_scorer = {"name": args.scorer, **({"pattern": args.pattern} if args.pattern else {})}
        scorer = parse_scorer(given_scorer)
    except ValidationError as exc:
        err = exc.errors()[0]
        # loc is (scorer name, field) for an option of a known scorer.
        field = ".".join(str(p) for p in err["loc"][1:])
        where = f"--scorer {args.scorer}: {field}" if field else "--scorer"
        raise UsageError(f"{prog}: {where}: {err['msg']}") from None
    given = {
        f: getattr(args, f) for f in BoundsOptions.model_fields if getattr(args, f) is not None
    }
    defaults = {
        f: i.get_default(call_default_factory=True) for f, i in BoundsOptions.model_fields.items()
    }
    model_from_flags(BoundsOptions, argparse.Namespace(**{**defaults, **given}), prog)
    job_id = client.rescore(args.job_id, scorer.model_dump(exclude_none=True), **given).id
    print(job_id, flush=True)
    return _finish(client, job_id, args)


RUNNERS: dict[str, Callable[[Client, argparse.Namespace], int]] = {
    "submit": _submit,
    "jobs": _jobs,
    "status": _status,
    "results": _results,
    "export": _export,
    "cancel": _cancel,
    "rescore": _rescore,
}


def run(args: argparse.Namespace) -> int:
    """Run a job command against the gateway; 2 on a 4xx, 1 when it is unreachable."""
    try:
        with Client(args.url) as client:
            return RUNNERS[args.command](client, args)
    except ApiError as exc:
        where = f" ({exc.param})" if exc.param else ""
        print(
            f"probeval {args.command}: {exc.status} {exc.code}{where}: {exc.message}",
            file=sys.stderr,
        )
        return 2 if 400 <= exc.status < 500 else 1
    except httpx.HTTPError as exc:
        print(f"probeval {args.command}: cannot reach the gateway: {exc}", file=sys.stderr)
        return 1
