"""What the benches start from, written once: a private redis-server in a throwaway folder, the
model folder (given, or a tiny random model built now), the benches' prompt text and job body,
a job submitted and waited for over HTTP, the CPU engine settings, and the shipped chat and
judge models' requests and template. Not a bench itself (hence the underscore).
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from probeval.local import ProcessGroup, free_port, start_redis
from shared.config import Settings
from shared.store import Store, connect

ROOT = Path(__file__).resolve().parents[1]
CHAT_DIR = ROOT / "models" / "tiny-chat"
JUDGE_DIR = ROOT / "models" / "tiny-judge"

# The sampling benches' prompt, numbered (``{i}``) per prompt of a job.
PROMPT = (
    "The river runs past the old mill and under the stone bridge before it reaches the sea, "
    "and the farmers bring apples number {i} to the market."
)
# A client that polls a job in a tight loop steals CPU from the engine on 2 cores; a real
# client polls about this often, and the job's own ``updated_at`` says when it finished.
POLL_S = 1.0


@dataclass
class PrivateRedis:
    """A redis-server on a free loopback port, and the group the bench adds its processes to."""

    group: ProcessGroup
    url: str
    root: Path  # the throwaway folder: logs/, data/ (Redis), and room for the bench's files

    @property
    def data_dir(self) -> Path:
        return self.root / "data"


@contextmanager
def private_redis(*, appendonly: bool, prefix: str | None = None) -> Iterator[PrivateRedis]:
    """Starts a redis-server in a new temporary folder; on exit stops every process of the
    group (the bench's too) and deletes the folder."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        root = Path(tmp)
        group = ProcessGroup(root / "logs")
        try:
            url = start_redis(group, root / "data", free_port(), appendonly=appendonly)
            yield PrivateRedis(group, url, root)
        finally:
            group.stop()


def store_synthetic_job(
    url: str, store_job: Callable[[Store, int, int, random.Random], str], prompts: int, n: int
) -> str:
    """Stores a finished job of ``prompts`` x ``n`` draws with ``store_job`` (its rng seeded 0,
    so every run stores the same draws) in the Redis at ``url``; prints how long that took and
    returns the job's id."""
    store = Store(connect(url), retention_s=3600)
    t0 = time.perf_counter()
    job_id = store_job(store, prompts, n, random.Random(0))
    print(f"stored {prompts} x {n} draws in {time.perf_counter() - t0:.1f} s")
    return job_id


def add_workload_args(
    parser: argparse.ArgumentParser, *, prompts: int = 8, n: int, max_tokens: int
) -> None:
    """--model, --prompts, -n and --max-tokens, with this bench's defaults."""
    parser.add_argument("--model", help="model folder (default: a tiny random model built now)")
    parser.add_argument("--prompts", type=int, default=prompts)
    parser.add_argument("-n", type=int, default=n)
    parser.add_argument("--max-tokens", type=int, default=max_tokens)


@contextmanager
def model_folder(given: str | None) -> Iterator[str]:
    """``given``, or else a tiny random-weight Llama built now in a temporary folder (deleted
    on exit), as the tests build theirs."""
    if given is not None:
        yield given
        return
    from probeval.tiny_model import build_tiny_model

    with tempfile.TemporaryDirectory() as tmp:
        yield str(build_tiny_model(Path(tmp) / "tiny-llama", seed=0))


def prompt_texts(prompts: int) -> list[str]:
    return [PROMPT.format(i=i) for i in range(prompts)]


def sampling_job_body(model: str, prompts: int, n: int, max_tokens: int) -> dict[str, Any]:
    """A job of ``prompts`` x ``n`` unseeded draws at temperature 1, scored by ROUGE-L recall
    against a reference, without greedy: what the sampling benches submit to the service."""
    return {
        "model": model,
        "prompts": [
            {"id": f"p{i}", "prompt": text, "reference": "the old mill"}
            for i, text in enumerate(prompt_texts(prompts))
        ],
        "sampling": {"n": n, "temperature": 1.0, "top_p": 1.0, "max_tokens": max_tokens},
        "scorer": {"name": "rouge_l_recall"},
        "greedy": False,
    }


def submit_and_wait(client: Any, body: dict[str, Any]) -> tuple[str, dict[str, Any], float]:
    """Submits ``body`` with the ``httpx.Client`` ``client``, polls every ``POLL_S`` until the
    job succeeds or fails, asserts it succeeded; returns its id, its last view and the seconds
    from the POST to its ``updated_at`` (same clock: everything runs on this machine)."""
    submitted = time.time()
    job_id = str(client.post("/v1/jobs", json=body).raise_for_status().json()["id"])
    while (view := client.get(f"/v1/jobs/{job_id}").json())["status"] not in (
        "succeeded",
        "failed",
    ):
        time.sleep(POLL_S)
    assert view["status"] == "succeeded", view
    return job_id, view, float(view["updated_at"]) - submitted


def cpu_engine_settings() -> Settings:
    """In-process ``VllmEngine`` settings for two tiny engines side by side on a CPU (float32,
    a tenth of host memory each for the KV cache, eager)."""
    return Settings(engine_dtype="float32", engine_memory_fraction=0.1, engine_enforce_eager=True)


def add_chat_and_judge_args(parser: argparse.ArgumentParser) -> None:
    """--chat and --judge, the shipped models by default."""
    parser.add_argument("--chat", type=Path, default=CHAT_DIR)
    parser.add_argument("--judge", type=Path, default=JUDGE_DIR)


def chat_requests(chat: Path) -> list[dict[str, Any]]:
    """The chat model's requests (``requests.json``: id, text)."""
    return list(json.loads((chat / "requests.json").read_text()))


def judge_spec(judge: Path) -> dict[str, Any]:
    """The judge's template and labels (``judge.json``)."""
    return dict(json.loads((judge / "judge.json").read_text()))
