"""`probeval` console command: the edge where arguments and the environment are read.

Each subcommand lives in ``probeval/commands/<name>.py`` with ``add_parser(subparsers)`` and
``run(args) -> int``; modules are imported only when their command runs, so ``probeval bounds``
never imports the web stack or vLLM.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# name -> (module, one-line help). Order is the order of `probeval --help`.
COMMANDS: dict[str, tuple[str, str]] = {
    "bounds": ("probeval.commands.bounds", "bound scores you already have (JSON or .npy)"),
    "compare": ("probeval.commands.compare", "compare two jobs (or score files) prompt by prompt"),
    "plan": ("probeval.commands.plan", "draws per prompt a question needs, and their cost"),
    "gateway": ("probeval.commands.gateway", "run the HTTP gateway"),
    "worker": ("probeval.commands.worker", "run a sampler or scorer worker"),
    "up": ("probeval.commands.up", "run Redis, gateway, one sampler and one scorer"),
    "demo": ("probeval.commands.demo", "reproduce the paper's finding on the shipped tiny model"),
    "submit": ("probeval.commands.jobs", "submit a job file (.json or .yaml); --wait follows it"),
    "jobs": ("probeval.commands.jobs", "list your jobs, newest first"),
    "status": ("probeval.commands.jobs", "a job's status and progress"),
    "results": ("probeval.commands.jobs", "a job's results as a table, JSON or CSV"),
    "export": ("probeval.commands.jobs", "download draws (jsonl, parquet) or results (csv)"),
    "cancel": ("probeval.commands.jobs", "cancel a job (--purge deletes its data)"),
    "rescore": ("probeval.commands.jobs", "score a succeeded job's draws again, another way"),
}


class UsageError(Exception):
    """Bad command-line input: printed as one line on stderr, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        # argparse prints usage plus the message; the contract is one line on stderr, exit 2.
        raise UsageError(f"{self.prog}: {message}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``probeval`` command; its exit code (2 with one stderr line on bad usage)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _Parser(prog="probeval", description="Distribution-level evaluation of LLMs.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    wanted = argv[0] if argv and argv[0] in COMMANDS else None
    for name, (module_name, help_text) in COMMANDS.items():
        if name == wanted:
            importlib.import_module(module_name).add_parser(sub, name, help_text)
        else:
            sub.add_parser(name, help=help_text, add_help=False)
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return 2
        module = importlib.import_module(COMMANDS[args.command][0])
        return int(module.run(args))
    except UsageError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
