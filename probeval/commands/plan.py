"""``probeval plan``: draws per prompt a question needs, and with ``--model`` their cost.

    probeval plan --target certify --tau 0.01 [--alpha A] [--leaks C] [--prompts M]
    probeval plan --target leak_at_k --k 10 --level 0.1 ...
    probeval plan --target mean_width --width 0.1 ...
    probeval plan ... --model NAME [--url URL] [--api-key KEY]

Without ``--model`` it computes offline; with it, POST /v1/plan prices the draws with the live
samplers' measured draws per second. Prints the ``PlanResponse`` JSON. Bad input: exit code 2
and one line on stderr; no gateway: exit code 1.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from probeval.cli import UsageError
from probeval.gateway_api import GatewayUnreachable, add_gateway_flags, post
from probeval.model_flags import add_model_flags, model_from_flags
from shared.schemas import PlanRequest, PlanResponse

PROG = "probeval plan"


def add_parser(subparsers: Any, name: str, help_text: str) -> None:
    """The ``plan`` flags, derived from ``PlanRequest``."""
    p = subparsers.add_parser(
        name,
        help=help_text,
        description="How many draws per prompt certify a question at alpha (n fixed before "
        "sampling), and, for a live model, what they cost.",
    )
    add_model_flags(p, PlanRequest)
    add_gateway_flags(p)


def run(args: argparse.Namespace) -> int:
    """``probeval plan``: offline without ``--model``, else through the gateway."""
    req = model_from_flags(PlanRequest, args, PROG)
    try:
        if req.model is None:
            from shared.draw_budget import plan
            from shared.errors import InvalidInput

            try:
                resp = plan(req)
            except InvalidInput as exc:
                raise UsageError(f"{PROG}: {exc.message}") from None
        else:
            body = req.model_dump(exclude_none=True)
            resp = PlanResponse.model_validate(
                post(args.url, "/v1/plan", body, api_key=args.api_key, prog=PROG)
            )
    except GatewayUnreachable as exc:
        print(str(exc), file=sys.stderr)
        return 1
    sys.stdout.write(resp.model_dump_json(indent=1))
    sys.stdout.write("\n")
    return 0
