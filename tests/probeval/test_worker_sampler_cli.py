"""`probeval worker sampler` argument checks and endpoint start-up failures, as processes.
(A real endpoint that does not serve the model: tests/e2e/test_openai_backend.py.)"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from probeval.local import free_port


def sampler(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "probeval", "worker", "sampler", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


@pytest.mark.parametrize("value", ["0", "-3", "1025", "eight", "2.5"])
def test_invalid_concurrency_is_a_usage_error(value: str) -> None:
    done = sampler(
        "--endpoint", "http://127.0.0.1:9", "--served-model", "m", "--concurrency", value
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "probeval worker sampler: argument --concurrency: must be an integer from 1 to 1024, "
        f"got {value!r}"
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--endpoint", "http://127.0.0.1:9"],
            "probeval worker sampler: --endpoint needs --served-model NAME (the model's id in "
            "the endpoint's /v1/models)",
        ),
        (
            ["--endpoint", "127.0.0.1:9", "--served-model", "m"],
            "probeval worker sampler: --endpoint must be an http:// or https:// URL, got "
            "'127.0.0.1:9'",
        ),
        (
            ["--model", "/nonexistent", "--endpoint", "http://127.0.0.1:9"],
            "probeval worker sampler: give --model or --endpoint, not both",
        ),
        (
            ["--model", "/nonexistent", "--concurrency", "4"],
            "probeval worker sampler: --concurrency needs --endpoint",
        ),
        (
            [],
            "probeval worker sampler: give --model PATH (vLLM in this process) or --endpoint URL "
            "--served-model NAME (an OpenAI-compatible server)",
        ),
    ],
)
def test_inconsistent_options_are_usage_errors(args: list[str], message: str) -> None:
    done = sampler(*args, env={"PROBEVAL_ENDPOINT_URL": ""})
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [message]


def test_an_unreachable_endpoint_at_start_exits_non_zero_with_a_clear_message() -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    done = sampler("--endpoint", url, "--served-model", "tiny")
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"probeval worker sampler: endpoint {url} does not answer (ConnectError")
    assert last.endswith("start the endpoint first or fix --endpoint/--served-model")


def test_the_endpoint_can_come_from_settings() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    env = {"PROBEVAL_ENDPOINT_URL": url, "PROBEVAL_ENDPOINT_SERVED_MODEL": "tiny"}
    done = sampler(env=env)
    assert done.returncode == 1
    assert f"endpoint {url} does not answer" in done.stderr
