"""Every setting of probeval, read from environment variables prefixed ``PROBEVAL_``.

This is the only module that reads the environment (``get_settings``); everything else takes a
``Settings`` (or the values it needs) as an argument.
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any, Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Typed settings; each field is ``PROBEVAL_<NAME>`` in the environment."""

    model_config = SettingsConfigDict(env_prefix="PROBEVAL_", extra="ignore")

    redis_url: str = Field(
        "redis://127.0.0.1:6379/0", description="Redis used for queues and data."
    )

    # Gateway
    host: str = Field("127.0.0.1", description="Address the gateway binds to.")
    port: int = Field(8000, ge=1, le=65_535, description="Port the gateway listens on.")
    # Longer than the idle expiry of clients' connection pools (httpx 5 s, aiohttp 15 s) and
    # of load balancers (AWS ALB 60 s), so that the client, not the gateway, closes an idle
    # connection: when the gateway closes it first, a request the client sends on it in that
    # instant is reset unanswered (uvicorn's 5 s against httpx's 5 s: 8 of 300 requests sent
    # after 4.9-5.1 s idle; none at 75 s).
    keep_alive_s: int = Field(
        75,
        ge=1,
        le=3_600,
        description="Seconds the gateway keeps an idle HTTP connection open.",
    )
    # asyncio's loop accepts every pending connection at once; uvloop's libuv (>= 1.45) one per
    # loop turn, so under load 50 connections opened at once waited 254-370 ms in the kernel's
    # accept queue, the slowest submits of a run. uvloop's ~1.2x submit rate comes with that
    # tail (docs/BENCHMARKS.md, issue #16 fifth round).
    gateway_loop: Literal["asyncio", "uvloop"] = Field(
        "asyncio",
        description="The gateway's event loop: asyncio (accepts connection bursts at once) or "
        "uvloop (~1.2x the submit rate, but new connections wait while it is busy).",
    )
    # Limits are bounded too, so that a typo (an extra zero, a negative) fails at start-up
    # with the variable's name instead of admitting jobs no worker can hold.
    max_body_bytes: int = Field(
        4_000_000,
        ge=1_024,
        le=1_000_000_000,
        description="Largest accepted request body (413 above).",
    )
    max_prompts_per_job: int = Field(
        1_000, ge=1, le=1_000_000, description="Most prompts in one job."
    )
    max_n: int = Field(8_192, ge=1, le=10_000_000, description="Most sampled draws per prompt.")
    max_tokens_limit: int = Field(
        2_048, ge=1, le=1_000_000, description="Largest accepted sampling.max_tokens."
    )
    max_draws_per_job: int = Field(
        2_000_000, ge=1, le=10_000_000_000, description="Most draws (prompts x n) in one job."
    )
    max_active_jobs_per_tenant: int = Field(
        100,
        ge=1,
        le=1_000_000,
        description="Most queued or running jobs of one tenant (429 above).",
    )

    # Authentication: `tenant:key` pairs (comma-separated) and/or a file of `tenant sha256-hex`
    # lines. Without any key the gateway only binds to loopback addresses, with auth off.
    api_keys: SecretStr = Field(
        SecretStr(""),
        description="Comma-separated tenant:key pairs (kept hashed in memory; never in repr).",
    )
    api_keys_file: str | None = Field(
        None, description="File of `tenant sha256(key)-hex` lines, one per key."
    )

    # Webhooks (shared/callbacks.py): a job's callback_url gets a POST of its view, signed with
    # its tenant's secret, once it ends; refused for non-public addresses outside the allowed
    # networks, at submission and again at each delivery.
    webhook_secrets: SecretStr = Field(
        SecretStr(""),
        description="Comma-separated tenant:secret pairs that sign webhooks; tenant `*` is the "
        "secret of every tenant without its own (and of the anonymous tenant when auth is off).",
    )
    callback_allowed_networks: str = Field(
        "",
        description="Comma-separated CIDRs a callback host may resolve into even though they "
        "are loopback, private or link-local (empty: only public addresses).",
    )
    callback_timeout_s: float = Field(
        10.0, ge=0.5, le=120.0, description="Timeout of one webhook POST."
    )
    callback_backoff_s: float = Field(
        2.0, ge=0.1, le=600.0, description="Wait before the first webhook retry; doubles after."
    )
    callback_retry_window_s: float = Field(
        3_600.0,
        ge=1.0,
        le=7 * 24 * 3_600.0,
        description="Webhook retries stop once their waits add up to this (then: failed).",
    )

    # Chunking: vLLM has hung on very large n, so one engine request carries at most this many
    # draws of one prompt; a chunk groups prompts up to ``chunk_draws`` draws in all.
    chunk_max_n: int = Field(
        256, ge=1, le=100_000, description="Most draws of one prompt in one engine request."
    )
    chunk_draws: int = Field(
        4_096, ge=1, le=10_000_000, description="Target draws per sampling chunk."
    )

    # Queue policy
    job_timeout_s: int = Field(
        3_600, ge=1, le=7 * 24 * 3_600, description="RQ timeout of one chunk."
    )
    retention_s: int = Field(
        7 * 24 * 3600,
        ge=60,
        le=10 * 365 * 24 * 3_600,
        description="How long jobs, samples and results live.",
    )

    # Archive (shared/archive.py): a finished job's draws and results move from Redis to Parquet
    # files under this URL, ``archive_after_s`` after the job ends; Redis then holds its record.
    archive_url: str = Field(
        "var/archive",
        min_length=1,
        description="Where finished jobs are archived as Parquet: a folder (default var/archive, "
        "under the state directory of `probeval up`) or an fsspec URL such as "
        "s3://bucket/prefix (install probeval[archive-s3]), gs://, az://.",
    )
    archive_options: dict[str, Any] = Field(
        default_factory=dict,
        description='fsspec storage options of the archive as JSON, e.g. {"endpoint_url": '
        '"http://minio:9000"} for an S3-compatible server (credentials: the backend\'s own '
        "variables, AWS_ACCESS_KEY_ID etc.).",
    )
    archive_after_s: float = Field(
        300.0,
        ge=0.0,
        le=30 * 24 * 3_600.0,
        description="Seconds after a job ends before its draws move to the archive (0: at once). "
        "Redis holds a finished job's draws this long.",
    )
    archive_sweep_s: float = Field(
        3_600.0,
        ge=10.0,
        le=7 * 24 * 3_600.0,
        description="How often one scorer deletes archives past their retention.",
    )

    # Worker registry: a worker refreshes its heartbeat every ``heartbeat_s`` and is listed
    # while its last heartbeat is younger than ``worker_ttl_s``.
    heartbeat_s: float = Field(
        10.0, gt=0.0, le=3_600.0, description="Seconds between worker heartbeats."
    )
    worker_ttl_s: float = Field(
        45.0,
        gt=0.0,
        description="A worker silent this long is considered dead; more than heartbeat_s.",
    )

    # Crash safety (docs/RELIABILITY.md): a worker's watchdog thread extends the RQ
    # started-registry entry of its running chunk to now + abandon_after_s every
    # abandon_after_s / 4 seconds, and every worker cleans the registries of all probeval queues
    # as often. A chunk whose worker died (kill -9, OOM, lost node) is therefore re-queued, as one
    # of its attempts, at most 1.25 x abandon_after_s (+1 s of RQ's whole-second scores) after its
    # last heartbeat, provided any worker is alive.
    abandon_after_s: float = Field(
        60.0,
        ge=2.0,
        le=3_600.0,
        description="A running chunk without a heartbeat this long is abandoned and re-queued "
        "(bound: detection within 1.25 x this value). Default 60 s; allowed 2..3600.",
    )
    reconnect_max_s: float = Field(
        30.0, ge=0.5, le=600.0, description="Longest back-off between a worker's reconnects."
    )

    # Sampler engine (vLLM)
    engine_dtype: Literal["auto", "bfloat16", "float16", "float32"] = Field(
        "auto",
        description="vLLM dtype (auto, bfloat16, float16, float32). On the CPU build auto is "
        "bfloat16 if the sampler's start-up self-test passes in it, else float32; on GPUs "
        "vLLM's own auto.",
    )
    engine_max_model_len: int | None = Field(None, ge=1, description="vLLM max_model_len.")
    engine_memory_fraction: float = Field(
        0.9,
        gt=0.0,
        le=1.0,
        description="vLLM gpu_memory_utilization; on the CPU build it is the share of host "
        "memory for the KV cache (0.2 works on a 24 GiB host).",
    )
    engine_tensor_parallel_size: int = Field(
        1, ge=1, le=1_024, description="vLLM tensor_parallel_size."
    )
    engine_enforce_eager: bool = Field(False, description="Skip CUDA graphs / torch.compile.")
    engine_seed: int = Field(0, description="Engine-level seed.")

    # Sampler backed by an OpenAI-compatible endpoint (`probeval worker sampler --endpoint`);
    # the command-line options override the first four.
    endpoint_url: str | None = Field(
        None,
        description="OpenAI-compatible server (or router) a sampler calls instead of loading "
        "a model, e.g. http://vllm-router:8000.",
    )
    endpoint_served_model: str | None = Field(
        None, description="Model name the endpoint serves (its /v1/models id)."
    )
    endpoint_api_key_env: str = Field(
        "PROBEVAL_ENDPOINT_API_KEY",
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="Name of the environment variable holding the endpoint's API key "
        "(sent as a bearer token; unset or empty: no key).",
    )
    endpoint_concurrency: int = Field(
        8, ge=1, le=1024, description="Requests one endpoint sampler keeps in flight (1..1024)."
    )
    endpoint_timeout_s: float = Field(
        600.0, gt=0, le=86_400, description="Longest wait for one completion response."
    )
    endpoint_connect_timeout_s: float = Field(
        5.0, gt=0, le=600, description="Longest wait to connect to the endpoint."
    )
    endpoint_retries: int = Field(
        4,
        ge=0,
        le=100,
        description="Resends of a request after a connection error, timeout, 429 or 5xx "
        "(same body, same seed) before the endpoint is probed.",
    )
    endpoint_backoff_max_s: float = Field(
        30.0, gt=0, le=3_600, description="Longest back-off between two resends."
    )
    endpoint_retry_after_max_s: float = Field(
        120.0,
        ge=0,
        le=3_600,
        description="Longest wait a 429/503 Retry-After header may ask for; a longer one is "
        "cut to this.",
    )

    def endpoint_api_key(self, variable: str | None = None) -> SecretStr | None:
        """The endpoint's API key from ``variable`` (default ``endpoint_api_key_env``)."""
        value = os.environ.get(variable or self.endpoint_api_key_env, "")
        return SecretStr(value) if value else None

    @model_validator(mode="after")
    def _worker_outlives_its_heartbeat(self) -> Settings:
        if self.worker_ttl_s <= self.heartbeat_s:
            raise ValueError(
                f"worker_ttl_s ({self.worker_ttl_s:g}) must be more than heartbeat_s "
                f"({self.heartbeat_s:g}), or live workers drop out of GET /v1/models"
            )
        return self


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once from the environment."""
    return Settings()


class ClientSettings(BaseSettings):
    """What ``probeval.client`` and the CLI's job commands read from the environment."""

    model_config = SettingsConfigDict(env_prefix="PROBEVAL_", extra="ignore")

    url: str = Field("http://127.0.0.1:8000", description="Base URL of the gateway.")
    api_key: SecretStr | None = Field(None, description="API key sent as `Bearer` token.")
