"""A few calls to the gateway's HTTP API for the CLI commands that need one (``probeval compare``
and ``probeval plan --model``). An API error becomes one ``UsageError`` line (exit code 2) with
the gateway's own message, which names the field; no gateway is exit code 1."""

from __future__ import annotations

from typing import Any

import httpx

from probeval.cli import UsageError


class GatewayUnreachable(Exception):
    """The gateway did not answer (exit code 1: not the caller's input)."""


def post(url: str, path: str, body: dict[str, Any], *, api_key: str | None, prog: str) -> Any:
    """POST ``body`` to the gateway: its JSON, UsageError on a 4xx, GatewayUnreachable else."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        resp = httpx.post(url.rstrip("/") + path, json=body, headers=headers, timeout=300)
    except httpx.HTTPError as exc:
        raise GatewayUnreachable(f"{prog}: no answer from the gateway at {url} ({exc})") from None
    if resp.status_code >= 400:
        try:
            error = resp.json()["error"]
            message = str(error["message"])
        except (ValueError, KeyError, TypeError):
            message = f"HTTP {resp.status_code}: {resp.text[:200]}"
        if resp.status_code >= 500:
            raise GatewayUnreachable(f"{prog}: the gateway failed: {message}")
        raise UsageError(f"{prog}: {message}")
    return resp.json()


def add_gateway_flags(parser: Any) -> None:
    """The ``--url`` and ``--api-key`` flags of commands that call the gateway."""
    parser.add_argument(
        "--url",
        default="http://127.0.0.1:8000",
        help="the gateway (default http://127.0.0.1:8000, where `probeval up` serves)",
    )
    parser.add_argument("--api-key", default=None, help="API key of your tenant, if auth is on")
