"""Prometheus metrics: counters the workers add to in Redis, and the collector with which the
gateway's ``GET /metrics`` reads them, together with job, queue and worker gauges.

Workers push through Redis rather than serving ``/metrics`` themselves because:

- they are RQ worker processes with no HTTP server, scaled by KEDA between 0 and N pods; a
  scrape target per worker would need pod discovery for every worker kind and would lose the
  counts of a pod that was scaled away between two scrapes;
- Redis already holds everything else the dashboard needs (jobs, queues, heartbeats), and an
  ``HINCRBY`` per chunk is negligible next to a chunk's work;
- the counters are cluster-wide totals that survive worker restarts (and Redis restarts, with
  the AOF). A Redis flush resets them, which Prometheus' ``rate()`` handles like any counter
  reset.

The values are cluster-wide, so every gateway replica reports the same numbers: scrape one
target (the Service) or aggregate replicas with ``max``, never ``sum`` (docs/deploy.md).

Counters count engine and scorer work: a chunk that is retried counts again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import redis
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from rq import Queue, Worker
from rq.registry import FailedJobRegistry, StartedJobRegistry

from shared import keys
from shared.schemas import TERMINAL_STATUSES, JobStatus

__all__ = [
    "RedisStateCollector",
    "measured_throughput",
    "record_generated",
    "record_scored",
    "record_status_change",
]

log = logging.getLogger(__name__)

# A client or a pipeline: with a pipeline the increments join the caller's transaction.
RedisLike = redis.Redis | redis.client.Pipeline

_TERMINAL = TERMINAL_STATUSES


Status = JobStatus | str | bytes | None


def _status(value: Status) -> str | None:
    if isinstance(value, JobStatus):
        return value.value
    return value.decode() if isinstance(value, bytes) else value


def _run(client: RedisLike, queue: Callable[[RedisLike], object]) -> None:
    """Queue commands on ``client``'s pipeline, or on a fresh one that is executed now."""
    if isinstance(client, redis.client.Pipeline):
        queue(client)
        return
    pipe = client.pipeline(transaction=False)
    queue(pipe)
    pipe.execute()


def record_generated(
    client: RedisLike, model: str, draws: int, tokens: int, *, seconds: float = 0.0
) -> None:
    """Add a chunk's generated draws and tokens, and the engine time they took (seconds inside
    ``generate``), to ``model``'s counters (sampler, per chunk)."""
    if draws < 0 or tokens < 0:
        raise ValueError(f"draws and tokens must be >= 0, got draws={draws}, tokens={tokens}")
    if not seconds >= 0.0:  # also NaN
        raise ValueError(f"seconds must be >= 0, got {seconds}")

    def queue(pipe: RedisLike) -> None:
        pipe.hincrby(keys.METRICS_DRAWS_GENERATED, model, draws)
        pipe.hincrby(keys.METRICS_TOKENS_GENERATED, model, tokens)
        if seconds > 0.0:
            pipe.hincrbyfloat(keys.METRICS_ENGINE_SECONDS, model, seconds)

    _run(client, queue)


def measured_throughput(client: redis.Redis, model: str) -> tuple[int, float]:
    """(draws generated, engine seconds) of ``model`` since the counters began; draws / seconds
    is one sampler's measured draws per second (engine time only: queueing and scoring are not
    in it)."""
    pipe = client.pipeline(transaction=False)
    pipe.hget(keys.METRICS_DRAWS_GENERATED, model)
    pipe.hget(keys.METRICS_ENGINE_SECONDS, model)
    draws, seconds = pipe.execute()
    return int(_text(draws)) if draws else 0, float(_text(seconds)) if seconds else 0.0


def record_scored(client: RedisLike, model: str, draws: int) -> None:
    """Add a chunk's scored draws to ``model``'s counter (scorer, per chunk)."""
    if draws < 0:
        raise ValueError(f"draws must be >= 0, got {draws}")
    _run(client, lambda pipe: pipe.hincrby(keys.METRICS_DRAWS_SCORED, model, draws))


def record_status_change(client: RedisLike, old: Status, new: Status) -> None:
    """Keep the per-status job counts that ``probeval_jobs`` reports.

    Call it once per actual transition: ``old=None`` when a job is created, ``new=None`` when a
    job is deleted. Active statuses (queued, running) are current counts: the old one goes down.
    Terminal statuses only go up (a counter of jobs that reached them), so deleting or expiring
    a finished job changes nothing and the counts need no scan of the job index.
    """
    old_s, new_s = _status(old), _status(new)
    if old_s == new_s:
        return

    def queue(pipe: RedisLike) -> None:
        if old_s is not None and old_s not in _TERMINAL:
            pipe.hincrby(keys.METRICS_JOBS_BY_STATUS, old_s, -1)
        if new_s is not None:
            pipe.hincrby(keys.METRICS_JOBS_BY_STATUS, new_s, 1)

    _run(client, queue)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _counts(raw: dict[Any, Any]) -> dict[str, int]:
    return {_text(k): int(v) for k, v in raw.items()}


class RedisStateCollector(Collector):
    """Reads the cluster's state from Redis at scrape time (a few round trips, no scans).

    ``client`` may decode responses or not. If Redis does not answer, only ``probeval_redis_up
    0`` is reported, so a scrape never fails because of Redis.
    """

    def __init__(
        self,
        client: redis.Redis,
        *,
        worker_ttl_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.worker_ttl_s = worker_ttl_s
        self.clock = clock

    def collect(self) -> Iterable[Metric]:
        try:
            metrics = list(self._collect())
        except (redis.RedisError, OSError) as exc:
            log.warning("metrics: Redis does not answer: %s", exc)
            metrics = []
        up = GaugeMetricFamily("probeval_redis_up", "1 if the gateway reached Redis at scrape.")
        up.add_metric([], 1.0 if metrics else 0.0)
        return [up, *metrics]

    def _collect(self) -> Iterator[Metric]:
        r = self.client
        pipe = r.pipeline(transaction=False)
        pipe.hgetall(keys.METRICS_DRAWS_GENERATED)
        pipe.hgetall(keys.METRICS_TOKENS_GENERATED)
        pipe.hgetall(keys.METRICS_DRAWS_SCORED)
        pipe.hgetall(keys.METRICS_JOBS_BY_STATUS)
        pipe.hkeys(keys.MODELS)
        generated, tokens, scored, statuses, model_names = pipe.execute()
        generated, tokens, scored = _counts(generated), _counts(tokens), _counts(scored)
        statuses = _counts(statuses)
        models = sorted({_text(m) for m in model_names} | set(generated) | set(scored))

        queues = [keys.SCORE_QUEUE, *(keys.sample_queue(m) for m in models)]
        now = self.clock()
        pipe = r.pipeline(transaction=False)
        for name in queues:
            pipe.llen(keys.rq_queue_list(name))
        for model in models:
            pipe.zcount(keys.model_workers(model), now - self.worker_ttl_s, "+inf")
        replies = pipe.execute()
        depths, live = replies[: len(queues)], replies[len(queues) :]

        jobs = GaugeMetricFamily("probeval_jobs", "Jobs now queued or running.", labels=["status"])
        finished = CounterMetricFamily(
            "probeval_jobs_finished",
            "Jobs that reached a terminal status (succeeded, failed, cancelled).",
            labels=["status"],
        )
        for status in JobStatus:
            count = float(statuses.get(status.value, 0))
            if status.terminal:
                finished.add_metric([status.value], count)
            else:
                jobs.add_metric([status.value], max(count, 0.0))
        yield jobs
        yield finished

        for name, help_text, values in (
            ("probeval_draws_generated", "Draws generated by samplers.", generated),
            ("probeval_tokens_generated", "Tokens generated by samplers.", tokens),
            ("probeval_draws_scored", "Draws scored by scorers.", scored),
        ):
            family = CounterMetricFamily(name, help_text, labels=["model"])
            for model in models:
                family.add_metric([model], float(values.get(model, 0)))
            yield family

        depth = GaugeMetricFamily(
            "probeval_queue_depth",
            "Chunks waiting in an RQ queue (the Redis list KEDA scales on).",
            labels=["queue"],
        )
        started = GaugeMetricFamily(
            "probeval_queue_started", "Chunks being worked on, per RQ queue.", labels=["queue"]
        )
        failed = GaugeMetricFamily(
            "probeval_queue_failed",
            "Chunks in RQ's failed registry (out of retries), per queue.",
            labels=["queue"],
        )
        for name, length in zip(queues, depths, strict=True):
            depth.add_metric([name], float(length))
            queue = Queue(name, connection=r)
            # cleanup=False: a scrape must not move jobs between RQ registries.
            started.add_metric(
                [name], float(StartedJobRegistry(queue=queue).get_job_count(cleanup=False))
            )
            failed.add_metric(
                [name], float(FailedJobRegistry(queue=queue).get_job_count(cleanup=False))
            )
        yield depth
        yield started
        yield failed

        samplers = GaugeMetricFamily(
            "probeval_sampler_workers",
            "Samplers per model whose heartbeat is younger than PROBEVAL_WORKER_TTL_S.",
            labels=["model"],
        )
        for model, count in zip(models, live, strict=True):
            samplers.add_metric([model], float(count))
        yield samplers
        scorers = GaugeMetricFamily(
            "probeval_scorer_workers", "Scorer workers registered with RQ on the score queue."
        )
        scorers.add_metric(
            [], float(Worker.count(connection=r, queue=Queue(keys.SCORE_QUEUE, connection=r)))
        )
        yield scorers
