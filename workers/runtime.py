"""What a worker process builds once at start and hands to every task it runs: settings, the
store, the RQ connection, and (in a sampler) the generation engine.

There is no process-wide runtime to install or to build on first use. The worker runs its
chunks as ``RuntimeJob``s of a class bound to its runtime (``RuntimeJob.bound_to(rt)``, given
to the RQ worker and to the abandoned-chunk cleaner as their job class); such a job calls its
task as ``task(rt, payload)``, and the failure callback reads ``runtime_of(job)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import redis
from rq.job import Job

from shared.config import Settings
from shared.queues import rq_connection
from shared.store import Store, connect

if TYPE_CHECKING:
    from workers.sampler.generation import GenerationEngine


@dataclass
class Runtime:
    """The process's connections and engine, built once by the worker's entry point."""

    settings: Settings
    store: Store
    rq: redis.Redis
    engine: GenerationEngine | None = None
    model: str | None = None


def build(
    settings: Settings, *, engine: GenerationEngine | None = None, model: str | None = None
) -> Runtime:
    """Connect to the settings' Redis; a sampler passes its loaded engine and model name."""
    return Runtime(
        settings=settings,
        store=Store(
            connect(settings.redis_url),
            retention_s=settings.retention_s,
            archive_options=settings.archive_options,
        ),
        rq=rq_connection(settings.redis_url),
        engine=engine,
        model=model,
    )


class RuntimeJob(Job):
    """An RQ job that runs its task with the runtime its class is bound to as first argument."""

    runtime: ClassVar[Runtime]

    @classmethod
    def bound_to(cls, rt: Runtime) -> type[RuntimeJob]:
        """A job class for one worker process: every job RQ builds from it carries ``rt``."""
        return type("RuntimeJob", (cls,), {"runtime": rt})

    def _execute(self) -> Any:
        # RQ's own _execute calls func(*args); the payload stays the only enqueued argument,
        # so the gateway enqueues by dotted path and never sees worker objects.
        return self.func(runtime_of(self), *self.args, **self.kwargs)


def runtime_of(job: Job) -> Runtime:
    """The runtime ``job`` was built with; an error if RQ built it without one."""
    rt = getattr(type(job), "runtime", None)
    if not isinstance(rt, Runtime):
        raise RuntimeError(
            f"RQ job {job.id} was not built by a probeval worker (job class "
            f"{type(job).__name__}, not RuntimeJob.bound_to(runtime))"
        )
    return rt
