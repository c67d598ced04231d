"""Print the requirement lines of pyproject.toml for the image builds (Dockerfile).

    python requirements.py pyproject.toml              # base dependencies only
    python requirements.py pyproject.toml --extra gpu-sampler
    python requirements.py pyproject.toml --only-extra cpu-sampler

The Dockerfile installs dependencies from pyproject.toml alone, before the source is copied, so
a code change does not reinstall them; this keeps the list spelled once, in pyproject.toml.
Standard library only: it runs in the bare python image.
"""

from __future__ import annotations

import argparse
import sys
import tomllib


def requirements(pyproject: dict, extras: list[str], *, base: bool) -> list[str]:
    project = pyproject["project"]
    optional = project.get("optional-dependencies", {})
    unknown = [e for e in extras if e not in optional]
    if unknown:
        raise SystemExit(f"unknown extra(s) {unknown}; pyproject.toml has {sorted(optional)}")
    lines = list(project["dependencies"]) if base else []
    for extra in extras:
        lines += optional[extra]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pyproject")
    parser.add_argument("--extra", action="append", default=[], help="add an extra's lines")
    parser.add_argument(
        "--only-extra", action="append", default=[], help="an extra's lines, without the base"
    )
    args = parser.parse_args(argv)
    with open(args.pyproject, "rb") as f:
        data = tomllib.load(f)
    if args.only_extra and args.extra:
        parser.error("--extra and --only-extra are exclusive")
    lines = requirements(data, args.only_extra or args.extra, base=not args.only_extra)
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
