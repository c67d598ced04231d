"""`probeval gateway`: run the HTTP gateway with uvicorn."""

from __future__ import annotations

import argparse
from typing import Any

from shared.config import get_settings


def add_parser(sub: Any, name: str, help_text: str) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = sub.add_parser(name, help=help_text, description=help_text)
    p.add_argument("--host", help="bind address (default PROBEVAL_HOST or 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default PROBEVAL_PORT or 8000)")
    return p


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from services.gateway.main import create_app

    settings = get_settings()
    host = args.host or settings.host
    port = args.port or settings.port
    uvicorn.run(create_app(settings), host=host, port=port, log_level="warning")
    return 0
