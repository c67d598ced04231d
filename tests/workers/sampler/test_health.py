"""Engine health without vLLM: the self-test, the dtype fallback, the interrupt that breaks a
call into a dead engine, and what a chunk that meets a dead engine spends. Fake engines (unit
tests); the real-engine versions are tests/reliability/test_engine_death.py."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import pytest
import redis
from rq.job import Job
from rq.serializers import JSONSerializer

from shared.config import Settings
from shared.queues import CHUNK_RETRIES, enqueue_sampling, rq_connection, sample_queue
from shared.schemas import ChunkSlice, ChunkTask, JobCreate
from shared.store import Store
from tests.fixtures.fakes import FakeEngine
from tests.fixtures.pipeline import worker_runtime
from workers import runtime
from workers.sampler.generation import (
    Completion,
    EngineDead,
    EngineDied,
    GenerationRequest,
    MonitoredEngine,
)
from workers.sampler.health import (
    SELF_TEST_N,
    DeathInterrupt,
    SelfTestFailed,
    load_checked_engine,
    self_test,
)
from workers.supervision import Halt, chunk_worker, serve


class MortalEngine(FakeEngine):
    """A FakeEngine with the MonitoredEngine surface; ``kill`` plays the engine core's death."""

    def __init__(self, dtype: str = "float32", *, block: bool = False) -> None:
        super().__init__()
        self.dtype = dtype
        self.block = block
        self.closed = False
        self._death: str | None = None
        self._in_generate = False
        self._listeners: list[Callable[[str], None]] = []

    @property
    def death(self) -> str | None:
        return self._death

    @property
    def in_generate(self) -> bool:
        return self._in_generate

    def on_death(self, callback: Callable[[str], None]) -> None:
        self._listeners.append(callback)

    def kill(self, reason: str = "engine core was killed by SIGKILL") -> None:
        self._death = reason
        for callback in self._listeners:
            callback(reason)

    def generate(self, requests: Sequence[GenerationRequest]) -> list[list[Completion]]:
        if self._death is not None:
            raise EngineDead(self._death)
        self._in_generate = True
        try:
            if self.block:  # what vLLM did after a kill -9 of its core: never return
                threading.Event().wait()
            return super().generate(requests)
        finally:
            self._in_generate = False

    def close(self) -> None:
        self.closed = True


def test_self_test_sends_a_greedy_and_a_seeded_n_request() -> None:
    engine = FakeEngine()
    self_test(engine)
    ((greedy, seeded),) = engine.calls
    assert (greedy.temperature, greedy.n) == (0.0, 1)
    assert seeded.temperature > 0 and seeded.n == SELF_TEST_N > 1 and seeded.seed is not None


def test_self_test_fails_on_a_short_answer() -> None:
    class Short(FakeEngine):
        def generate(self, requests: Sequence[GenerationRequest]) -> list[list[Completion]]:
            return [[Completion("x", 1)] for _ in requests]

    with pytest.raises(RuntimeError, match=r"returned \[1, 1\] completions"):
        self_test(Short())


def test_the_next_dtype_is_loaded_when_one_fails_its_self_test() -> None:
    loaded: list[MortalEngine] = []

    def load(model_path: str, settings: Settings, *, dtype: str) -> MonitoredEngine:
        engine = MortalEngine(dtype)
        loaded.append(engine)
        if dtype == "bfloat16":
            engine.kill("engine core was killed by SIGILL")  # as on the Intel AMX host
        return engine

    halt = Halt()
    engine = load_checked_engine(
        "tiny", "/m", Settings(), ["bfloat16", "float32"], load, DeathInterrupt(halt)
    )
    assert [e.dtype for e in loaded] == ["bfloat16", "float32"]
    assert engine is loaded[1]
    assert loaded[0].closed and not loaded[1].closed
    # The failed dtype's death must not halt the sampler that goes on with float32.
    assert halt.reason is None


def test_a_self_test_failure_in_every_dtype_names_model_dtypes_and_fix() -> None:
    def load(model_path: str, settings: Settings, *, dtype: str) -> MonitoredEngine:
        if dtype == "float32":
            raise ValueError("no config.json")
        engine = MortalEngine(dtype)
        engine.kill("engine core was killed by SIGILL")
        return engine

    with pytest.raises(SelfTestFailed) as err:
        load_checked_engine(
            "tiny", "/m", Settings(), ["bfloat16", "float32"], load, DeathInterrupt(Halt())
        )
    message = str(err.value)
    assert "model 'tiny' (/m)" in message
    assert "dtype bfloat16: EngineDead: engine core was killed by SIGILL" in message
    assert "dtype float32: ValueError: no config.json" in message
    assert "float32 failed too" in message


def test_an_explicit_non_float32_dtype_suggests_float32() -> None:
    def load(model_path: str, settings: Settings, *, dtype: str) -> MonitoredEngine:
        engine = MortalEngine(dtype)
        engine.kill()
        return engine

    with pytest.raises(SelfTestFailed, match="Try PROBEVAL_ENGINE_DTYPE=float32"):
        load_checked_engine("m", "/m", Settings(), ["bfloat16"], load, DeathInterrupt(Halt()))


def test_the_interrupt_breaks_a_generate_call_that_never_returns() -> None:
    halt = Halt()
    interrupt = DeathInterrupt(halt)
    engine = MortalEngine(block=True)
    interrupt.watch(engine)
    threading.Timer(0.3, engine.kill).start()
    started = time.monotonic()
    with pytest.raises(EngineDied, match="SIGKILL"):
        engine.generate([GenerationRequest("p", 1, 1.0, 1.0, 0, 4)])
    assert time.monotonic() - started < 5
    assert halt.reason is not None and "SIGKILL" in halt.reason


# ---- what a chunk spends, through RQ on a real Redis -------------------------------------------


def queued_chunk(store: Store, settings: Settings) -> str:
    spec = JobCreate.model_validate(
        {
            "model": "tiny",
            "prompts": [{"id": "p0", "prompt": "hello", "reference": "x"}],
            "sampling": {"n": 4, "max_tokens": 4},
            "greedy": False,
        }
    )
    task = ChunkTask(
        job_id="j" * 32, chunk_id=0, slices=[ChunkSlice(prompt_index=0, start=0, count=4)]
    )
    store.create_job(task.job_id, spec, [task], tenant="t")
    enqueue_sampling(rq_connection(settings.redis_url), "tiny", task, settings)
    return f"{task.job_id}-0-sample"


def run_one_chunk(rt: runtime.Runtime) -> None:
    make = chunk_worker([sample_queue(rt.rq, "tiny")], rt)
    make("test-sampler").work(burst=True, max_jobs=1)


@pytest.mark.parametrize(("error", "attempts_spent"), [(EngineDead, 0), (EngineDied, 1)])
def test_a_chunk_meeting_a_dead_engine_goes_back_on_the_queue(
    redis_url: str,
    redis_client: redis.Redis,
    store: Store,
    error: type[Exception],
    attempts_spent: int,
) -> None:
    """Refused by an engine that had already died (``EngineDead``): back on the queue, no
    attempt spent. Running when the engine died (``EngineDied``): back as one failed attempt."""

    class Dead(FakeEngine):
        def generate(self, requests: Sequence[GenerationRequest]) -> Any:
            raise error("engine core was killed by SIGKILL")

    settings = Settings(redis_url=redis_url)
    rq_id = queued_chunk(store, settings)
    run_one_chunk(worker_runtime(settings, Dead(), "tiny"))
    job = Job.fetch(rq_id, connection=rq_connection(redis_url), serializer=JSONSerializer)
    assert job.get_status() == "queued"
    assert job.retries_left == CHUNK_RETRIES - attempts_spent
    assert store.get_job("j" * 32).status.value in ("queued", "running")  # not failed
    # A live sampler then runs it to the end.
    run_one_chunk(worker_runtime(settings, FakeEngine(), "tiny"))
    assert store.count_texts("j" * 32, 0) == 4


def test_a_halted_worker_takes_no_chunk(
    redis_url: str, redis_client: redis.Redis, store: Store
) -> None:
    settings = Settings(redis_url=redis_url)
    rt = worker_runtime(settings, FakeEngine(), "tiny")
    rq_id = queued_chunk(store, settings)
    halt = Halt()
    halt.set("the engine died: engine core was killed by SIGKILL")
    conn = rt.rq
    make = chunk_worker([sample_queue(conn, "tiny")], rt, halt=halt)
    # The worker takes no chunk (not even in burst mode, where RQ stops on an empty queue) ...
    assert make("halted-test").work(burst=True) is False
    # ... and serve does not start (or restart) a work loop.
    assert serve(make, "halted-test-2", rt, halt=halt) == halt.reason
    job = Job.fetch(rq_id, connection=conn, serializer=JSONSerializer)
    assert job.get_status() == "queued" and job.retries_left == CHUNK_RETRIES
    assert store.count_texts("j" * 32, 0) == 0


def test_a_death_found_by_the_main_thread_itself_reaches_every_listener() -> None:
    """vLLM may raise EngineDeadError in the main thread before the monitor sees the exit: the
    interrupt must then not signal the main thread (it is already raising), and the sampler's
    own death callback (unregister, hard-exit timer) must still run."""

    class DiesInGenerate(MortalEngine):
        def generate(self, requests: Sequence[GenerationRequest]) -> list[list[Completion]]:
            self._in_generate = True
            try:
                self.kill("vLLM reported its engine core dead")
                raise EngineDied("vLLM reported its engine core dead")
            finally:
                self._in_generate = False

    halt = Halt()
    engine = DiesInGenerate()
    DeathInterrupt(halt).watch(engine)
    heard: list[str] = []
    engine.on_death(heard.append)
    with pytest.raises(EngineDied):
        engine.generate([GenerationRequest("p", 1, 1.0, 1.0, 0, 4)])
    assert heard == ["vLLM reported its engine core dead"]
    assert halt.reason == "the engine died: vLLM reported its engine core dead"
