"""Redis memory per million stored draws, measured (docs/deploy.md#redis-memory).

Starts a private redis-server on a free loopback port (AOF on, as deployed), writes synthetic
draws through ``shared.store.Store`` -- the same Lua scripts and keys the workers use: per prompt
a hash sample index -> text and a hash sample index -> score -- and reads ``INFO memory`` and
the AOF's size on disk.

    .venv/bin/python bench/redis_memory.py                       # 1M draws, n = 64, 1024, 8192
    .venv/bin/python bench/redis_memory.py --draws 200000 --n 256 --text-bytes 600
    .venv/bin/python bench/redis_memory.py --archive     # a 1,000 x 1,024 job, then archived

``--archive`` writes one finished job (a real job record and chunk plan through
``Store.create_job``, its draws and scores, its results) and then runs the archiving steps of
``workers/scorer/archiving.py`` (write, verify, record, delete): Redis bytes per draw before and
after, archive bytes per draw on disk, the write throughput, and page reads (100 draws of a
random prompt at a random offset, GET /v1/jobs/{id}/samples's read) from Redis and from the
archive.

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
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._stack import private_redis  # noqa: E402
from shared import keys  # noqa: E402
from shared.archive import delete_draw_keys, record_archive, write_archive  # noqa: E402
from shared.archive_reader import ArchivedJob  # noqa: E402
from shared.draws import JobDraws  # noqa: E402
from shared.planning import plan_chunks  # noqa: E402
from shared.results import build_results  # noqa: E402
from shared.schemas import JobCreate, JobStatus  # noqa: E402
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


def fake_text_around(rng: random.Random, text_bytes: int) -> str:
    """A fake text of ``text_bytes`` +- 20% (uniform)."""
    return fake_text(rng, rng.randint(int(text_bytes * 0.8), int(text_bytes * 1.2)))


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
        {i: fake_text_around(rng, text_bytes) for i in range(n)} for _ in range(min(prompts, 4))
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


@dataclass
class ArchiveResult:
    prompts: int
    n: int
    draws: int
    text_bytes_mean: float
    redis_bytes_per_draw_live: float
    redis_bytes_per_draw_archived: float
    redis_bytes_job_archived: int
    redis_bytes_job_keys_archived: int
    archive_bytes_per_draw: float
    archive_bytes: int
    write_s: float
    write_draws_per_s: float
    delete_s: float
    open_cold_s: float
    page_redis_ms_median: float
    page_archive_ms_median: float
    pages: int


def _pages(draws: JobDraws, rng: random.Random, prompts: int, n: int, count: int) -> list[float]:
    times = []
    for _ in range(count):
        p, offset = rng.randrange(prompts), rng.randrange(0, n - 100)
        t0 = time.perf_counter()
        texts, _ = draws.page(p, list(range(offset, offset + 100)))
        draws.count(p)
        times.append(time.perf_counter() - t0)
        assert all(t is not None for t in texts)
    return sorted(times)


def measure_archive(
    client: redis.Redis, folder: Path, *, prompts: int, n: int, text_bytes: int, seed: int
) -> ArchiveResult:
    client.flushall()
    rng = random.Random(seed)
    store = Store(client, retention_s=7 * 24 * 3600)
    job_id = "bench-archive-job"
    spec = JobCreate.model_validate(
        {
            "model": "bench",
            "prompts": [
                {"id": f"p{i}", "prompt": f"Question {i}: " + fake_text(rng, 80), "reference": "x"}
                for i in range(prompts)
            ],
            "sampling": {"n": n, "max_tokens": 32},
            "greedy": False,
        }
    )
    base = used_memory(client)
    store.create_job(job_id, spec, plan_chunks(job_id, spec, chunk_max_n=256, chunk_draws=4096))
    pool = [fake_text_around(rng, text_bytes) for _ in range(4096)]
    lengths = []
    for p in range(prompts):
        texts = {i: pool[rng.randrange(len(pool))] for i in range(n)}
        lengths += [len(t) for t in texts.values()]
        store.save_texts(job_id, p, texts)
        store.save_scores(
            job_id, p, {i: rng.randint(0, 40) / rng.randint(40, 60) for i in range(n)}
        )
    job = store.get_job(job_id)
    store.save_results(job_id, build_results(store, job, status=JobStatus.succeeded))
    store.set_status(job_id, JobStatus.succeeded, allowed_from=[JobStatus.queued])
    live = used_memory(client)
    draws = prompts * n
    job = store.get_job(job_id)
    redis_pages = _pages(JobDraws(store, job), random.Random(1), prompts, n, 200)

    t0 = time.perf_counter()
    location, manifest = write_archive(store, job, store.results(job_id), str(folder), {})
    write_s = time.perf_counter() - t0
    assert record_archive(store, job_id, location, manifest) == 1
    t0 = time.perf_counter()
    delete_draw_keys(store, store.get_job(job_id))
    delete_s = time.perf_counter() - t0
    archived = used_memory(client)
    # MEMORY USAGE of what is left of the job (record, chunk plan): used_memory also moves
    # with allocator and dictionary effects of deleting a million fields.
    left = [keys.job(job_id), *client.scan_iter(match=keys.job_keys_pattern(job_id))]
    key_bytes = sum(int(client.memory_usage(k, samples=0) or 0) for k in left)  # exact
    t0 = time.perf_counter()
    ArchivedJob.open(location, {}, cache=False)
    open_cold_s = time.perf_counter() - t0
    archive_pages = _pages(
        JobDraws(store, store.get_job(job_id)), random.Random(1), prompts, n, 200
    )
    size = sum(p.stat().st_size for p in (folder / job_id).iterdir())
    return ArchiveResult(
        prompts=prompts,
        n=n,
        draws=draws,
        text_bytes_mean=sum(lengths) / len(lengths),
        redis_bytes_per_draw_live=(live - base) / draws,
        redis_bytes_per_draw_archived=(archived - base) / draws,
        redis_bytes_job_archived=archived - base,
        redis_bytes_job_keys_archived=key_bytes,
        archive_bytes_per_draw=size / draws,
        archive_bytes=size,
        write_s=write_s,
        write_draws_per_s=draws / write_s,
        delete_s=delete_s,
        open_cold_s=open_cold_s,
        page_redis_ms_median=redis_pages[len(redis_pages) // 2] * 1e3,
        page_archive_ms_median=archive_pages[len(archive_pages) // 2] * 1e3,
        pages=len(archive_pages),
    )


def print_archive(r: ArchiveResult, version: str) -> None:
    print(
        f"redis-server {version}; one job of {r.prompts} x {r.n} draws, texts ~{r.text_bytes_mean:.0f} B"
    )
    print(
        "| Redis B/draw live | Redis B/draw archived: used_memory (job's keys) | archive B/draw (total) "
        "| write s (draws/s) | delete s | open s | page ms Redis / archive (median of 200) |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|")
    print(
        f"| {r.redis_bytes_per_draw_live:.0f} | {r.redis_bytes_per_draw_archived:.3f} "
        f"({r.redis_bytes_job_keys_archived / r.draws:.3f}: {r.redis_bytes_job_keys_archived:,} B) "
        f"| {r.archive_bytes_per_draw:.1f} "
        f"({r.archive_bytes / 2**20:.1f} MiB) | {r.write_s:.1f} ({r.write_draws_per_s:,.0f}) "
        f"| {r.delete_s:.2f} | {r.open_cold_s:.3f} "
        f"| {r.page_redis_ms_median:.2f} / {r.page_archive_ms_median:.2f} |"
    )


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
    parser.add_argument(
        "--archive", action="store_true", help="measure archiving one prompts x n job instead"
    )
    parser.add_argument("--prompts", type=int, default=1000, help="prompts of the --archive job")
    args = parser.parse_args(argv)
    sizes = args.n or [64, 1024, 8192]
    if args.archive:
        return main_archive(args)

    with private_redis(appendonly=True, prefix="probeval-redis-bench-") as redis_server:
        client = connect(redis_server.url)
        version = client.info("server")["redis_version"]
        results = [
            measure(
                client,
                redis_server.data_dir,
                n=n,
                draws=args.draws,
                text_bytes=args.text_bytes,
                binary=args.binary_scores,
                seed=args.seed,
            )
            for n in sizes
        ]

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


def main_archive(args: argparse.Namespace) -> int:
    n = (args.n or [1024])[0]
    with private_redis(appendonly=True, prefix="probeval-archive-bench-") as redis_server:
        client = connect(redis_server.url)
        version = client.info("server")["redis_version"]
        result = measure_archive(
            client,
            redis_server.root / "archive",
            prompts=args.prompts,
            n=n,
            text_bytes=args.text_bytes,
            seed=args.seed,
        )
    print_archive(result, version)
    if args.json:
        args.json.write_text(json.dumps({"redis": version, "archive": asdict(result)}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
