"""`probeval worker sampler|scorer`: run one worker process."""

from __future__ import annotations

import argparse
import logging
import os
from typing import Any

from probeval.cli import UsageError
from shared.config import get_settings


def add_parser(sub: Any, name: str, help_text: str) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = sub.add_parser(name, help=help_text, description=help_text)
    kinds = p.add_subparsers(dest="kind", metavar="KIND", required=True)
    s = kinds.add_parser("sampler", help="generate draws with vLLM for one model")
    s.add_argument("--model", required=True, help="path of the model folder (Hugging Face format)")
    s.add_argument("--name", help="name jobs use for this model (default: the folder's name)")
    s.add_argument("--burst", action="store_true", help="exit when the queue is empty")
    c = kinds.add_parser("scorer", help="score draws and compute bounds")
    c.add_argument("--burst", action="store_true", help="exit when the queue is empty")
    return p


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    settings = get_settings()
    if args.kind == "sampler":
        if not os.path.isdir(args.model):
            raise UsageError(f"probeval worker sampler: --model {args.model!r} is not a folder")
        from workers.sampler.main import run_sampler

        run_sampler(args.model, args.name, settings, burst=args.burst)
    else:
        from workers.scorer.main import run_scorer

        run_scorer(settings, burst=args.burst)
    return 0
