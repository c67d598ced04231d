"""`up` and `demo` turn SIGTERM and SIGINT into KeyboardInterrupt, so their LocalStack stops everything."""

from __future__ import annotations

import os
import signal

import pytest

from probeval.interrupts import sigterm_as_keyboard_interrupt


def test_sigterm_becomes_keyboard_interrupt() -> None:
    previous = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    try:
        sigterm_as_keyboard_interrupt()
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGTERM)
            signal.sigtimedwait([], 0.1)  # let the handler run before leaving the block
    finally:
        signal.signal(signal.SIGTERM, previous[0])
        signal.signal(signal.SIGINT, previous[1])


def test_sigint_works_even_when_the_process_started_with_it_ignored() -> None:
    # What a shell without job control does to `probeval up &` (seen: a CI step run in the
    # background, whose `up` then ignored the test's SIGINT and never stopped).
    previous = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        sigterm_as_keyboard_interrupt()
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            signal.sigtimedwait([], 0.1)
    finally:
        signal.signal(signal.SIGTERM, previous[0])
        signal.signal(signal.SIGINT, previous[1])
