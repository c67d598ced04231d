"""`probeval up` / `demo` supervision (probeval/local.py) with real child processes: small Python
programs stand in for the workers, so these run in seconds and need no vLLM."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

import pytest

from probeval.local import LocalStack


def start_program(stack: LocalStack, name: str, code: str) -> None:
    stack.supervise(name, lambda: stack.group.start(name, [sys.executable, "-c", code]))


def run_until(stack: LocalStack, done: object, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        stack.check_alive()
        if callable(done) and done():
            return
        time.sleep(0.05)
    raise TimeoutError("condition not reached")


def test_a_worker_that_keeps_failing_fast_stops_the_stack_with_its_last_log_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with LocalStack(tmp_path, backoff_s=0.1, fast_failure_s=60, max_fast_failures=3) as stack:
        start_program(stack, "sampler", "import sys; print('self-test failed: boom'); sys.exit(4)")
        with pytest.raises(RuntimeError) as err:
            run_until(stack, lambda: False)
    message = str(err.value)
    assert "sampler exited with code 4" in message
    assert "failed 3 times in a row" in message
    assert "self-test failed: boom" in message
    out = capsys.readouterr().out
    # Two restarts were announced before the third failure gave up.
    assert out.count("restarting it in") == 2
    assert "restarted sampler (restart 2," in out
    assert stack.workers["sampler"].restarts == 2


def test_a_killed_worker_is_restarted_and_said_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with LocalStack(tmp_path, backoff_s=0.1) as stack:
        start_program(stack, "scorer", "import time; time.sleep(60)")
        first = stack.workers["scorer"].proc
        first.send_signal(signal.SIGKILL)
        run_until(stack, lambda: stack.workers["scorer"].proc is not first)
        second = stack.workers["scorer"].proc
        assert second.poll() is None
        # The group holds the new process only (the old one was reaped).
        assert [p for n, p in stack.group.procs if n == "scorer"] == [second]
    assert "scorer was killed by SIGKILL" in capsys.readouterr().out
    assert second.poll() is not None  # stopped with the stack


def test_slow_failures_do_not_count_towards_giving_up(tmp_path: Path) -> None:
    """A worker that runs longer than fast_failure_s before each exit is restarted for ever."""
    with LocalStack(tmp_path, backoff_s=0.05, fast_failure_s=0.2, max_fast_failures=2) as stack:
        start_program(stack, "sampler", "import sys, time; time.sleep(0.4); sys.exit(3)")
        run_until(stack, lambda: stack.workers["sampler"].restarts >= 3)
        assert stack.workers["sampler"].fast_failures == 0


def test_redis_or_gateway_exiting_is_an_error_not_a_restart(tmp_path: Path) -> None:
    with LocalStack(tmp_path) as stack:
        gateway = stack.group.start("gateway", [sys.executable, "-c", "print('bye')"])
        gateway.wait()
        with pytest.raises(RuntimeError, match=r"gateway exited with code 0(.|\n)*bye"):
            stack.check_alive()
