"""``probeval compare``: per-prompt differences between two jobs, or two score files.

    probeval compare [--target T] [--alpha A] [--family F] [--k K] [--leak-at X] [--json]
                     [--url URL] [--api-key KEY] JOB_A JOB_B
    probeval compare --scores A.json B.json [same options]

With job ids it calls POST /v1/compare on the gateway; with ``--scores`` it computes the same
``CompareResponse`` offline from two files of ``{"scores": [[...], ...], "ids": [...]}`` (row i
is prompt i on both sides; ``ids`` optional). Prints a table (or the JSON with ``--json``). Bad
input: exit code 2 and one line on stderr; no gateway: exit code 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from probeval.cli import UsageError
from probeval.gateway_api import GatewayUnreachable, add_gateway_flags, post
from probeval.model_flags import add_model_flags, model_from_flags
from shared.schemas import CompareOptions, CompareRequest, CompareResponse

PROG = "probeval compare"


def add_parser(subparsers: Any, name: str, help_text: str) -> None:
    """The ``compare`` flags, derived from ``CompareOptions``, and the two sides."""
    p = subparsers.add_parser(
        name,
        help=help_text,
        description="Is b lower or higher than a, prompt by prompt, with distribution-free "
        "intervals on b - a and family-wise decisions (docs/metrics.md: comparing two jobs).",
    )
    add_model_flags(p, CompareOptions)
    p.add_argument("--scores", action="store_true", help="A and B are score files, not job ids")
    p.add_argument("--json", action="store_true", help="print the CompareResponse JSON")
    add_gateway_flags(p)
    p.add_argument("a", metavar="A", help="job id (or score file with --scores) of side a")
    p.add_argument("b", metavar="B", help="job id (or score file with --scores) of side b")


def _score_file(file: str, side: str) -> tuple[list[str] | None, list[Any]]:
    try:
        doc = json.loads(Path(file).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise UsageError(f"{PROG}: cannot read {file} ({reason})") from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"{PROG}: {file} is not valid JSON ({exc})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("scores"), list):
        raise UsageError(
            f'{PROG}: {file} must be a JSON object with "scores": a list of rows, one per prompt'
        )
    ids = doc.get("ids")
    if ids is not None and not (
        isinstance(ids, list)
        and all(isinstance(i, str) for i in ids)
        and len(ids) == len(doc["scores"])
    ):
        raise UsageError(f'{PROG}: "ids" in {file} must be a list of strings, one per row')
    for i, row in enumerate(doc["scores"]):
        if not isinstance(row, list):
            raise UsageError(f"{PROG}: {side}[{i}] in {file} is not a list of scores in [0, 1]")
    return ids, doc["scores"]


def _offline(args: argparse.Namespace, options: CompareOptions) -> CompareResponse:
    from shared.comparison import compare_scores
    from shared.errors import InvalidInput

    ids_a, rows_a = _score_file(args.a, "a")
    ids_b, rows_b = _score_file(args.b, "b")
    if ids_a is not None and ids_b is not None and ids_a != ids_b:
        raise UsageError(f"{PROG}: the two files have different ids; allowed: the same prompts")
    ids = ids_a or ids_b or [str(i) for i in range(len(rows_a))]
    try:
        return compare_scores(ids, rows_a, rows_b, options, a=args.a, b=args.b)
    except InvalidInput as exc:
        raise UsageError(f"{PROG}: {exc.message}") from None


def table(resp: CompareResponse) -> str:
    """The comparison as a fixed-width table, then the summary statement."""
    width = max([6, *(len(p.id) for p in resp.prompts)])
    level = f"{1 - resp.interval_alpha:.4g}"
    head = (
        f"{'prompt':<{width}}  {'a':>6}  {'b':>6}  {'b - a':>7}  "
        f"{'interval (' + level + ')':>20}  {'p':>8}  decision"
    )
    lines = [
        f"{resp.target} of b ({resp.b}) against a ({resp.a}), alpha = {resp.alpha:g}, "
        f"family = {resp.family}",
        head,
        "-" * len(head),
    ]
    for p in resp.prompts:
        interval = f"[{p.lower:+.3f}, {p.upper:+.3f}]"
        lines.append(
            f"{p.id:<{width}}  {p.a:6.3f}  {p.b:6.3f}  {p.difference:+7.3f}  {interval:>20}  "
            f"{p.p_value:8.2g}  {p.decision}"
        )
    lines.append("")
    lines.append(resp.summary.statement)
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """``probeval compare``: through the gateway for job ids, offline for score files."""
    options = model_from_flags(CompareOptions, args, PROG)
    try:
        if args.scores:
            resp = _offline(args, options)
        else:
            body = CompareRequest(a=args.a, b=args.b, **options.model_dump()).model_dump()
            resp = CompareResponse.model_validate(
                post(args.url, "/v1/compare", body, api_key=args.api_key, prog=PROG)
            )
    except GatewayUnreachable as exc:
        print(str(exc), file=sys.stderr)
        return 1
    sys.stdout.write(resp.model_dump_json() if args.json else table(resp))
    sys.stdout.write("\n")
    return 0
