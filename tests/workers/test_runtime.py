"""The worker's runtime reaches its tasks and the failure callback explicitly, through the job
class bound to it; a job RQ builds without it is refused, never given a runtime from the
environment. Against the real Redis of the test session."""

from __future__ import annotations

import pytest
import redis
from rq import Queue, SimpleWorker
from rq.job import Job
from rq.serializers import JSONSerializer

from shared.config import Settings
from workers import runtime


def seen_by_task(rt: runtime.Runtime, payload: dict[str, str]) -> dict[str, str | None]:
    """A task that reports which runtime it was given."""
    return {"model": rt.model, "echo": payload["x"]}


def test_a_bound_worker_passes_its_runtime_to_the_task(
    redis_url: str, redis_client: redis.Redis
) -> None:
    rt = runtime.build(Settings(redis_url=redis_url), model="m-under-test")
    queue = Queue("probeval-test-runtime", connection=rt.rq, serializer=JSONSerializer)
    job = queue.enqueue(f"{__name__}.seen_by_task", {"x": "hello"})
    worker = SimpleWorker(
        [queue],
        connection=rt.rq,
        serializer=JSONSerializer,
        job_class=runtime.RuntimeJob.bound_to(rt),
    )
    worker.work(burst=True)
    done = Job.fetch(job.id, connection=rt.rq, serializer=JSONSerializer)
    assert done.return_value() == {"model": "m-under-test", "echo": "hello"}


def test_two_runtimes_in_one_process_stay_apart(redis_url: str) -> None:
    a = runtime.build(Settings(redis_url=redis_url), model="a")
    b = runtime.build(Settings(redis_url=redis_url), model="b")
    job_a = runtime.RuntimeJob.bound_to(a)(connection=a.rq)
    job_b = runtime.RuntimeJob.bound_to(b)(connection=b.rq)
    assert runtime.runtime_of(job_a) is a and runtime.runtime_of(job_b) is b


def test_a_job_built_without_a_runtime_is_refused(redis_url: str) -> None:
    rt = runtime.build(Settings(redis_url=redis_url))
    with pytest.raises(RuntimeError, match="not built by a probeval worker"):
        runtime.runtime_of(Job(connection=rt.rq))
    assert not hasattr(runtime, "current") and not hasattr(runtime, "install")
