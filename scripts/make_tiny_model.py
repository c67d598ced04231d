#!/usr/bin/env python
"""Build the tiny random-weight Llama model used by tests, demos and benchmarks.

    python scripts/make_tiny_model.py OUT_DIR [--seed S]

Thin wrapper over ``probeval.tiny_model.build_tiny_model``; same seed -> identical weights.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

# Runnable from a checkout without installing the package.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from probeval.tiny_model import build_tiny_model, weights_sha256  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path, help="folder to write the model into")
    parser.add_argument("--seed", type=int, default=0, help="weight seed (default 0)")
    args = parser.parse_args(argv)
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    out = build_tiny_model(args.out_dir, seed=args.seed)
    print(f"{out}  weights sha256 {weights_sha256(out)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
