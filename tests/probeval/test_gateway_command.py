"""`probeval gateway`'s start-up: the heap built before serving is left out of collections."""

from __future__ import annotations

import gc

from probeval.commands.gateway import freeze_startup_heap


def test_freeze_startup_heap_moves_live_objects_out_of_collection() -> None:
    keep = [[i] for i in range(1000)]  # live objects, tracked by the collector
    try:
        freeze_startup_heap()
        assert gc.get_freeze_count() >= len(keep)
    finally:
        gc.unfreeze()  # the test process goes on collecting as usual
