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
import sys
from pathlib import Path
from typing import Any

from probeval.cli import UsageError
from probeval.model_flags import add_model_flags, model_from_flags
from shared.schemas import BoundsOptions

PROG = "probeval bounds"


def add_parser(subparsers: Any, name: str, help_text: str) -> None:
    p = subparsers.add_parser(
        name,
        help=help_text,
        description="Distribution-free bounds for rows of scores in [0, 1] (one row per "
        "prompt). See docs/metrics.md for each bound, its sidedness and its assumptions.",
    )
    add_model_flags(p, BoundsOptions)
    p.add_argument("file", metavar="FILE", help=".json, .npy, or - for JSON on stdin")


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
