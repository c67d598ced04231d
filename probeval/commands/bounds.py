"""``probeval bounds``: every bound for score rows the caller already has.

    probeval bounds [--alpha A] [--threshold X]... [--quantile Q]... [--ed-lambda L] FILE

FILE is a ``.json`` file holding ``{"scores": [[...], ...]}`` (rows may differ in length), a
``.npy`` file holding a 2-D float array, or ``-`` for the JSON form on stdin. stdout is exactly
one JSON document, ``BoundsResponse`` (the same one POST /v1/bounds returns). Bad input: exit
code 2, nothing on stdout, one line on stderr naming the problem and the allowed values.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

from probeval.cli import UsageError

PROG = "probeval bounds"


def add_parser(subparsers: Any, name: str, help_text: str) -> None:
    p = subparsers.add_parser(
        name,
        help=help_text,
        description="Distribution-free bounds for rows of scores in [0, 1] (one row per "
        "prompt). See docs/metrics.md for each bound, its sidedness and its assumptions.",
    )
    p.add_argument(
        "--alpha",
        type=float,
        default=0.01,
        help="error level in (0, 1); bounds hold at 1 - alpha (default 0.01)",
    )
    p.add_argument(
        "--threshold",
        type=float,
        action="append",
        default=[],
        metavar="X",
        help="threshold x in [0, 1] for an upper bound on P(X > x); repeatable",
    )
    p.add_argument(
        "--quantile",
        type=float,
        action="append",
        default=[],
        metavar="Q",
        help="level q in [0, 1] for an upper bound on the q-quantile; repeatable",
    )
    p.add_argument(
        "--ed-lambda",
        type=float,
        default=1.0,
        metavar="L",
        help="weight lambda >= 0 in ed = mean + lambda * sd (default 1)",
    )
    p.add_argument("file", metavar="FILE", help=".json, .npy, or - for JSON on stdin")


def _check_options(args: argparse.Namespace) -> None:
    if not (math.isfinite(args.alpha) and 0.0 < args.alpha < 1.0):
        raise UsageError(f"{PROG}: --alpha must be a number in (0, 1), got {args.alpha!r}")
    for flag, values in (("--threshold", args.threshold), ("--quantile", args.quantile)):
        for v in values:
            if not (math.isfinite(v) and 0.0 <= v <= 1.0):
                raise UsageError(f"{PROG}: {flag} must be a number in [0, 1], got {v!r}")
        if len(values) > 64:
            raise UsageError(f"{PROG}: at most 64 values of {flag}, got {len(values)}")
    if not (math.isfinite(args.ed_lambda) and 0.0 <= args.ed_lambda <= 1e6):
        raise UsageError(
            f"{PROG}: --ed-lambda must be a number in [0, 1e6], got {args.ed_lambda!r}"
        )


def _scores_from_json(text: str, source: str) -> Any:
    try:
        doc = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(
            f'{PROG}: {source} is not valid JSON ({exc}); allowed: {{"scores": [[...], ...]}}'
        ) from None
    if not isinstance(doc, dict) or "scores" not in doc:
        raise UsageError(
            f'{PROG}: {source} must be a JSON object with a "scores" key; '
            'allowed: {"scores": [[...], ...]}'
        )
    scores = doc["scores"]
    if not isinstance(scores, list):
        raise UsageError(
            f'{PROG}: "scores" in {source} must be a list of rows; allowed: '
            "lists of numbers in [0, 1]"
        )
    for i, row in enumerate(scores):
        if not isinstance(row, list):
            raise UsageError(
                f"{PROG}: scores[{i}] is not a list; allowed: a list of finite numbers in [0, 1]"
            )
    return scores


def _scores_from_npy(path: Path) -> Any:
    import numpy as np

    try:
        arr = np.load(path, allow_pickle=False)
    except ValueError as exc:
        if "allow_pickle" in str(exc) or "object" in str(exc).lower():
            raise UsageError(
                f"{PROG}: {path} holds an object array (ragged rows?); allowed: a "
                "2-D float array (use .json for rows of different lengths)"
            ) from None
        raise UsageError(
            f"{PROG}: cannot read {path} as .npy ({exc}); allowed: a 2-D float array"
        ) from None
    except OSError as exc:
        raise UsageError(f"{PROG}: cannot read {path} ({exc.strerror or exc})") from None
    if not isinstance(arr, np.ndarray) or arr.ndim != 2:
        shape = getattr(arr, "shape", "?")
        raise UsageError(
            f"{PROG}: {path} holds an array of shape {shape}; allowed: a 2-D float "
            "array, one row per prompt"
        )
    if arr.dtype.kind not in "fiub":
        raise UsageError(f"{PROG}: {path} holds dtype {arr.dtype}; allowed: a 2-D float array")
    return arr


def _read_scores(file: str) -> Any:
    if file == "-":
        return _scores_from_json(sys.stdin.read(), "stdin")
    path = Path(file)
    suffix = path.suffix.lower()
    if suffix not in (".json", ".npy"):
        raise UsageError(f"{PROG}: FILE must end in .json or .npy, or be -; got {file!r}")
    if suffix == ".npy":
        return _scores_from_npy(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise UsageError(f"{PROG}: cannot read {file} ({reason})") from None
    return _scores_from_json(text, file)


def run(args: argparse.Namespace) -> int:
    _check_options(args)
    scores = _read_scores(args.file)

    from shared.bounds import compute_bounds
    from shared.errors import InvalidInput
    from shared.schemas import BoundsOptions

    options = BoundsOptions(
        alpha=args.alpha,
        thresholds=args.threshold,
        quantiles=args.quantile,
        ed_lambda=args.ed_lambda,
    )
    try:
        response = compute_bounds(scores, options)
    except InvalidInput as exc:
        raise UsageError(f"{PROG}: {exc.message}") from None
    sys.stdout.write(response.model_dump_json(by_alias=True))
    sys.stdout.write("\n")
    return 0
