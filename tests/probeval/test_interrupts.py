"""`up` and `demo` turn SIGTERM into KeyboardInterrupt, so their LocalStack stops everything."""

from __future__ import annotations

import os
import signal

import pytest

from probeval.interrupts import sigterm_as_keyboard_interrupt


def test_sigterm_becomes_keyboard_interrupt() -> None:
    previous = signal.getsignal(signal.SIGTERM)
    try:
        sigterm_as_keyboard_interrupt()
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGTERM)
            signal.sigtimedwait([], 0.1)  # let the handler run before leaving the block
    finally:
        signal.signal(signal.SIGTERM, previous)
