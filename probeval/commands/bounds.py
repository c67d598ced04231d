"""``probeval bounds``: every bound for score rows the caller already has.

    probeval bounds [--alpha A] [--threshold X]... [--quantile Q]... [--ed-lambda L] FILE
    probeval bounds --sequential --target T (--threshold X | --width W) [--x X] [--min-n N]
                    [--max-n N] [--round R] [--futility F] [--alpha A] [--survival X]...
                    [--quantile Q]... FILE

FILE is a ``.json`` file holding ``{"scores": [[...], ...]}`` (rows may differ in length), a
``.npy`` file holding a 2-D float array, or ``-`` for the JSON form on stdin. stdout is exactly
one JSON document, ``BoundsResponse`` (the same one POST /v1/bounds returns). Bad input: exit
code 2, nothing on stdout, one line on stderr naming the problem and the allowed values.

``--sequential`` reads each row as a stream in the given order, round by round, and stops it
by the stopping rule exactly as an adaptive job's scorer does (the same code,
``shared.sequential``); stdout is ``SequentialResponse``: per row ``n_used``, ``decision``,
``lower``, ``upper``, ``reason`` and the bounds that stay valid under optional stopping. There
``--threshold`` is the stopping threshold (``stopping.threshold``, one value) and the survival
bounds take their x from ``--survival``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from probeval.cli import UsageError
from probeval.model_flags import add_model_flags, model_from_flags
from shared.schemas import BoundsOptions

PROG = "probeval bounds"


def add_parser(subparsers: Any, name: str, help_text: str) -> None:
    """The ``bounds`` flags, derived from ``BoundsOptions``, plus the sequential ones."""
    p = subparsers.add_parser(
        name,
        help=help_text,
        description="Distribution-free bounds for rows of scores in [0, 1] (one row per "
        "prompt). See docs/metrics.md for each bound, its sidedness and its assumptions.",
    )
    add_model_flags(p, BoundsOptions)
    seq = p.add_argument_group(
        "sequential", "--sequential: stop each row by a stopping rule (as an adaptive job does)"
    )
    seq.add_argument(
        "--sequential", action="store_true", help="read rows as streams and stop them by the rule"
    )
    seq.add_argument("--target", help="p_full, mean or survival (with --x)")
    seq.add_argument("--x", type=float, help="the x of target survival, P(score > x)")
    seq.add_argument("--width", type=float, help="stop once upper - lower <= W (or --threshold)")
    seq.add_argument("--min-n", type=int, default=1, help="no stop before N draws (default 1)")
    seq.add_argument("--max-n", type=int, help="most draws per row (default: the longest row)")
    seq.add_argument("--round", type=int, default=64, help="draws per round (default 64)")
    seq.add_argument(
        "--futility",
        type=float,
        help="opt-in futility stop in (0, 0.5]: give a row up (undecided, reason futile) once "
        "a decision by --max-n has probability below F (with --threshold; p_full, survival)",
    )
    seq.add_argument(
        "--survival",
        type=float,
        action="append",
        default=[],
        metavar="X",
        help="with --sequential: x for the anytime upper bounds on P(X > x); repeatable",
    )
    p.add_argument("file", metavar="FILE", help=".json, .npy, or - for JSON on stdin")


_SEQUENTIAL_ONLY = ("target", "x", "width", "max_n", "futility")
_FLAGS = {"target": "--target", "x": "--x", "threshold": "--threshold", "width": "--width",
          "min_n": "--min-n", "max_n": "--max-n", "round": "--round",
          "futility": "--futility"}  # fmt: skip


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


def _longest(scores: Any) -> int:
    if hasattr(scores, "shape"):
        return int(scores.shape[1])
    return max((len(r) for r in scores), default=1)


def run_sequential(args: argparse.Namespace) -> int:
    """``bounds --sequential``: stop each row by the rule, print the stopped bounds."""
    from pydantic import ValidationError

    from shared.errors import InvalidInput
    from shared.schemas import StoppingSpec
    from shared.sequential import run_sequential as stop_rows

    if len(args.thresholds) > 1:
        raise UsageError(
            f"{PROG}: with --sequential, --threshold is the stopping threshold: give it once, "
            f"got {len(args.thresholds)} values (survival bounds take --survival)"
        )
    threshold = args.thresholds[0] if args.thresholds else None
    args.thresholds = args.survival
    options = model_from_flags(BoundsOptions, args, PROG)
    if args.target is None:
        raise UsageError(f"{PROG}: --sequential needs --target; allowed: p_full, mean, survival")
    scores = _read_scores(args.file)
    fields = {
        "target": args.target,
        "x": args.x,
        "threshold": threshold,
        "width": args.width,
        "min_n": args.min_n,
        "max_n": args.max_n if args.max_n is not None else _longest(scores),
        "round": args.round,
        "futility": args.futility,
    }
    try:
        spec = StoppingSpec.model_validate(fields)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = str(error["loc"][0]) if error["loc"] else "target"
        raise UsageError(
            f"{PROG}: {_FLAGS.get(field, field)}: {error['msg'][0].lower()}{error['msg'][1:]}, "
            f"got {fields.get(field)!r}"
        ) from None
    try:
        response = stop_rows(scores, spec, options)
    except InvalidInput as exc:
        message = exc.message
        if exc.param and exc.param.startswith("stopping."):
            name = exc.param.removeprefix("stopping.")
            message = _FLAGS[name] + message.removeprefix(exc.param)
        raise UsageError(f"{PROG}: {message}") from None
    sys.stdout.write(response.model_dump_json(by_alias=True))
    sys.stdout.write("\n")
    return 0


def run(args: argparse.Namespace) -> int:
    """``probeval bounds``: bounds on the score rows of a file, as /v1/bounds computes them."""
    if args.sequential:
        return run_sequential(args)
    given = [_FLAGS[f] for f in _SEQUENTIAL_ONLY if getattr(args, f) is not None] + (
        ["--survival"] if args.survival else []
    )
    if given:
        raise UsageError(f"{PROG}: {given[0]} needs --sequential")
    options = model_from_flags(BoundsOptions, args, PROG)
    scores = _read_scores(args.file)

    from shared.bounds import compute_bounds
    from shared.errors import InvalidInput

    try:
        response = compute_bounds(scores, options)
    except InvalidInput as exc:
        raise UsageError(f"{PROG}: {exc.message}") from None
    sys.stdout.write(response.model_dump_json(by_alias=True))
    sys.stdout.write("\n")
    return 0
