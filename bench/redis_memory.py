"""Redis memory per million stored draws, measured (docs/deploy.md#redis-memory).

Starts a private redis-server on a free loopback port (AOF on, as deployed), writes synthetic
draws through ``shared.store.Store`` -- the same Lua scripts and keys the workers use: per prompt
a hash sample index -> text and a hash sample index -> score -- and reads ``INFO memory`` and
the AOF's size on disk.

    .venv/bin/python bench/redis_memory.py                       # 1M draws, n = 64, 1024, 8192
    .venv/bin/python bench/redis_memory.py --draws 200000 --n 256 --text-bytes 600

Texts are ~``--text-bytes`` of word-like ASCII (150 bytes ~ 32 tokens); scores are what the
scorer stores, ``repr(float)`` of a ROUGE-like value (~18 characters); ``--binary-scores``
stores 0.0/1.0 instead. Redis does not compress, so the content does not matter, its length
does. Run by hand; no test asserts these numbers.
"""

from __future__ import annotations

import argparse
import json
import random
import string
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from probeval.local import ProcessGroup, free_port, start_redis  # noqa: E402
from shared.store import Store, connect  # noqa: E402


@dataclass
class Result:
    n: int
    prompts: int
    draws: int
    text_bytes_mean: float
    bytes_per_draw_texts: float
    bytes_per_draw_scores: float
    bytes_per_draw: float
    gib_per_million_draws: float
    aof_bytes_per_draw_appended: float
    aof_bytes_per_draw_rewritten: float
    text_encoding: str
    score_encoding: str


def fake_text(rng: random.Random, target: int) -> str:
    words: list[str] = []
    size = 0
    while size < target:
        # Word-like runs of letters, 2 to 9 long (English averages ~4.7 bytes per word).
        word = "".join(rng.choices(string.ascii_lowercase, k=rng.randint(2, 9)))
        words.append(word)
        size += len(word) + 1
    return " ".join(words)[:target]


def used_memory(client: redis.Redis) -> int:
    client.execute_command("MEMORY", "PURGE")
    return int(client.info("memory")["used_memory"])


def aof_size(data_dir: Path) -> int:
    """Bytes of the append-only files (Redis 7: appendonlydir/, base + incremental parts)."""
    return sum(p.stat().st_size for p in data_dir.rglob("appendonly*") if p.is_file())


def measure(
    client: redis.Redis,
    data_dir: Path,
    *,
    n: int,
    draws: int,
    text_bytes: int,
    binary: bool,
    seed: int,
) -> Result:
    client.flushall()
    # No automatic rewrite mid-run: the appended figure is then the whole command log.
    client.config_set("auto-aof-rewrite-percentage", 0)
    client.execute_command("BGREWRITEAOF")
    wait_for_rewrite(client)
    rng = random.Random(seed)
    store = Store(client, retention_s=7 * 24 * 3600)
    prompts = max(1, draws // n)
    job = "bench-job"
    texts_per_prompt = [
        {
            i: fake_text(rng, rng.randint(int(text_bytes * 0.8), int(text_bytes * 1.2)))
            for i in range(n)
        }
        for _ in range(min(prompts, 4))
    ]
    lengths = [len(t) for batch in texts_per_prompt for t in batch.values()]

    base = used_memory(client)
    aof_base = aof_size(data_dir)
    for p in range(prompts):
        store.save_texts(job, p, texts_per_prompt[p % len(texts_per_prompt)])
    after_texts = used_memory(client)
    for p in range(prompts):
        if binary:
            scores = {i: float(rng.random() < 0.3) for i in range(n)}
        else:
            scores = {i: rng.randint(0, 40) / rng.randint(40, 60) for i in range(n)}
        store.save_scores(job, p, scores)
    after_scores = used_memory(client)
    # Appended: the commands as logged (fsync every second), what the disk holds until the next
    # rewrite. Rewritten: after BGREWRITEAOF, whose base part is an RDB (compressed) snapshot.
    time.sleep(1.5)
    aof_appended = aof_size(data_dir) - aof_base

    client.execute_command("BGREWRITEAOF")
    wait_for_rewrite(client)
    stored = prompts * n
    total = after_scores - base
    return Result(
        n=n,
        prompts=prompts,
        draws=stored,
        text_bytes_mean=sum(lengths) / len(lengths),
        bytes_per_draw_texts=(after_texts - base) / stored,
        bytes_per_draw_scores=(after_scores - after_texts) / stored,
        bytes_per_draw=total / stored,
        gib_per_million_draws=total / stored * 1e6 / 2**30,
        aof_bytes_per_draw_appended=aof_appended / stored,
        aof_bytes_per_draw_rewritten=aof_size(data_dir) / stored,
        text_encoding=str(client.object("encoding", f"probeval:job:{job}:p:0:texts")),
        score_encoding=str(client.object("encoding", f"probeval:job:{job}:p:0:scores")),
    )


def wait_for_rewrite(client: redis.Redis) -> None:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        info = client.info("persistence")
        if not info["aof_rewrite_in_progress"] and not info["aof_rewrite_scheduled"]:
            return
        time.sleep(0.1)
    raise TimeoutError("AOF rewrite did not finish")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=1_000_000, help="draws per configuration")
    parser.add_argument(
        "--n", type=int, action="append", help="draws per prompt (repeatable; default 64 1024 8192)"
    )
    parser.add_argument("--text-bytes", type=int, default=150, help="mean text length in bytes")
    parser.add_argument("--binary-scores", action="store_true", help="store 0.0/1.0 scores")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    sizes = args.n or [64, 1024, 8192]

    with tempfile.TemporaryDirectory(prefix="probeval-redis-bench-") as tmp:
        root = Path(tmp)
        group = ProcessGroup(root / "logs")
        try:
            url = start_redis(group, root / "data", free_port(), appendonly=True)
            client = connect(url)
            version = client.info("server")["redis_version"]
            results = [
                measure(
                    client,
                    root / "data",
                    n=n,
                    draws=args.draws,
                    text_bytes=args.text_bytes,
                    binary=args.binary_scores,
                    seed=args.seed,
                )
                for n in sizes
            ]
        finally:
            group.stop()

    print(
        f"redis-server {version}; texts ~{args.text_bytes} B; scores "
        f"{'0.0/1.0' if args.binary_scores else 'repr(float) ROUGE-like'}"
    )
    print(
        "| draws/prompt | draws | B/draw texts | B/draw scores | B/draw | GiB per 1M draws "
        "| AOF B/draw appended / rewritten | encodings (texts, scores) |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in results:
        print(
            f"| {r.n} | {r.draws:,} | {r.bytes_per_draw_texts:.0f} | {r.bytes_per_draw_scores:.0f}"
            f" | {r.bytes_per_draw:.0f} | {r.gib_per_million_draws:.3f} | "
            f"{r.aof_bytes_per_draw_appended:.0f} / {r.aof_bytes_per_draw_rewritten:.0f} | "
            f"{r.text_encoding}, {r.score_encoding} |"
        )
    if args.json:
        args.json.write_text(
            json.dumps({"redis": version, "results": [asdict(r) for r in results]}, indent=2)
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
