"""`probeval gateway`: run the HTTP gateway with uvicorn."""

from __future__ import annotations

import argparse
import gc
import logging
from typing import Any

from probeval.cli import UsageError
from shared.config import get_settings
from shared.errors import InvalidInput


def add_parser(sub: Any, name: str, help_text: str) -> argparse.ArgumentParser:
    """The ``gateway`` flags: where to listen."""
    p: argparse.ArgumentParser = sub.add_parser(name, help=help_text, description=help_text)
    p.add_argument("--host", help="bind address (default PROBEVAL_HOST or 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default PROBEVAL_PORT or 8000)")
    return p


def run(args: argparse.Namespace) -> int:
    """Serve the gateway with uvicorn; refuses a non-loopback address without API keys."""
    import uvicorn

    from services.gateway.auth import KeyRing, is_loopback
    from services.gateway.main import create_app

    settings = get_settings()
    host = args.host or settings.host
    port = args.port or settings.port
    try:
        ring = KeyRing.from_settings(settings)
    except (InvalidInput, OSError) as exc:
        raise UsageError(f"probeval gateway: {exc}") from exc
    if not ring.enabled:
        if not is_loopback(host):
            raise UsageError(
                f"probeval gateway: refusing to bind {host} without API keys; set "
                "PROBEVAL_API_KEYS or PROBEVAL_API_KEYS_FILE, or bind a loopback address"
            )
        logging.getLogger("probeval").warning(
            "AUTH IS OFF: no API keys configured; anyone who can reach %s:%d can use the gateway",
            host,
            port,
        )
        print(
            f"[probeval gateway] WARNING: AUTH IS OFF (no API keys); listening on {host}:{port} only",
            flush=True,
        )
    # No access log: at log level warning it is never printed, yet uvicorn would still format
    # each request's client address and path for it (the request-latency histogram, /metrics,
    # counts requests instead).
    app = create_app(settings)
    freeze_startup_heap()
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        timeout_keep_alive=settings.keep_alive_s,
        loop=settings.gateway_loop,
    )
    return 0


def freeze_startup_heap() -> None:
    """Leave what start-up built (modules, the app, pydantic's validators: ~10^5-10^6 objects)
    out of every later garbage collection.

    Under load, objects alive at a young collection (in-flight requests') are promoted, so a
    full collection comes about once a second, and it walks the whole heap: ~100 ms with the
    event loop stopped, which every request in flight waits out (gc.callbacks timing in the
    gateway under bench/gateway.py's submit load: 100-126 ms each, ~1 a second). Frozen, a full
    collection walks only what was made since: 3-7 ms. Collected first, so no start-up
    garbage is kept for good."""
    gc.collect()
    gc.freeze()
