"""`probeval gateway`'s start-up: the heap built before serving is left out of collections, and
uvicorn gets the event loop and the keep-alive from the settings."""

from __future__ import annotations

import argparse
import gc
from typing import Any

import pytest

from probeval.commands import gateway
from probeval.commands.gateway import freeze_startup_heap


def test_freeze_startup_heap_moves_live_objects_out_of_collection() -> None:
    keep = [[i] for i in range(1000)]  # live objects, tracked by the collector
    try:
        freeze_startup_heap()
        assert gc.get_freeze_count() >= len(keep)
    finally:
        gc.unfreeze()  # the test process goes on collecting as usual


@pytest.mark.parametrize(
    ("env", "loop", "keep_alive"),
    [
        ({}, "asyncio", 75),
        ({"PROBEVAL_GATEWAY_LOOP": "uvloop", "PROBEVAL_KEEP_ALIVE_S": "9"}, "uvloop", 9),
    ],
)
def test_uvicorn_runs_with_the_loop_and_keep_alive_of_the_settings(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], loop: str, keep_alive: int
) -> None:
    import uvicorn

    from shared.config import get_settings

    for name in ("PROBEVAL_GATEWAY_LOOP", "PROBEVAL_KEEP_ALIVE_S", "PROBEVAL_API_KEYS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    seen: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: seen.update(options))
    monkeypatch.setattr(gateway, "freeze_startup_heap", lambda: None)
    get_settings.cache_clear()  # read once per process; this test changes the environment
    try:
        assert gateway.run(argparse.Namespace(host="127.0.0.1", port=8123)) == 0
    finally:
        get_settings.cache_clear()
    assert seen["loop"] == loop
    assert seen["timeout_keep_alive"] == keep_alive
    assert (seen["host"], seen["port"]) == ("127.0.0.1", 8123)
