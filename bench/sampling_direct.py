"""Direct ``vllm.LLM.generate`` throughput, the baseline the whole service is compared with.

    python bench/sampling_direct.py MODEL_DIR [--prompts 8] [-n 512] [--max-tokens 32]

``direct_draws_per_second`` loads one ``LLM`` with the same engine options ``VllmEngine`` uses
(CPU: memory fraction 0.2, eager, no chunked prefill), warms it up, then times one
``LLM.generate`` call of P prompts x n draws x up to T tokens (EOS may end draws earlier) and
returns the rates. It imports vllm, so call it under ``if __name__ == "__main__":``.
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import dataclass
from typing import Any

# The same quiet, offline environment the engine sets (workers/sampler/engine.py).
for _key, _value in {
    "VLLM_LOGGING_LEVEL": "WARNING",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "VLLM_NO_USAGE_STATS": "1",
    "TOKENIZERS_PARALLELISM": "false",
}.items():
    os.environ.setdefault(_key, _value)

_PROMPT = (
    "The river runs past the old mill and under the stone bridge before it reaches the sea, "
    "and the farmers bring apples number {i} to the market."
)


@dataclass(frozen=True)
class DirectResult:
    """One timed ``LLM.generate`` call."""

    prompts: int
    n: int
    max_tokens: int
    load_s: float
    generate_s: float
    draws: int
    tokens: int

    @property
    def draws_per_s(self) -> float:
        return self.draws / self.generate_s

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.generate_s


def default_llm_options(on_cpu: bool, max_model_len: int | None = None) -> dict[str, Any]:
    """The engine options ``VllmEngine`` uses by default on this platform."""
    if not on_cpu:
        return {"gpu_memory_utilization": 0.9}
    return {
        "gpu_memory_utilization": 0.2,
        "enforce_eager": True,
        "enable_chunked_prefill": False,
        "max_num_batched_tokens": max(4096, max_model_len or 0),
    }


def direct_draws_per_second(
    model: str,
    *,
    prompts: int = 8,
    n: int = 512,
    max_tokens: int = 32,
    temperature: float = 1.0,
    seed: int | None = None,
    llm_options: dict[str, Any] | None = None,
) -> DirectResult:
    """Time P prompts x ``n`` draws x up to ``max_tokens`` tokens in one ``LLM.generate``.

    ``llm_options`` replace the defaults of ``default_llm_options``; ``seed`` (if given) is the
    per-request seed of prompt ``i`` plus ``i``. Load time includes model load and start-up.
    """
    from vllm import LLM, SamplingParams
    from vllm.platforms import current_platform

    options = default_llm_options(current_platform.is_cpu())
    options.update(llm_options or {})
    started = time.perf_counter()
    llm = LLM(model=model, seed=0, **options)
    load_s = time.perf_counter() - started

    texts = [_PROMPT.format(i=i) for i in range(prompts)]
    params = [
        SamplingParams(
            n=n,
            temperature=temperature,
            max_tokens=max_tokens,
            seed=None if seed is None else seed + i,
        )
        for i in range(prompts)
    ]
    llm.generate(texts[:1], SamplingParams(n=2, max_tokens=4), use_tqdm=False)  # warm-up
    started = time.perf_counter()
    outputs = llm.generate(texts, params, use_tqdm=False)
    generate_s = time.perf_counter() - started
    completions = [c for o in outputs for c in o.outputs]
    return DirectResult(
        prompts=prompts,
        n=n,
        max_tokens=max_tokens,
        load_s=load_s,
        generate_s=generate_s,
        draws=len(completions),
        tokens=sum(len(c.token_ids) for c in completions),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="model folder (e.g. from scripts/make_tiny_model.py)")
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("-n", type=int, default=512)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--seed", type=int, default=None, help="per-request seed base")
    parser.add_argument(
        "--chunked-prefill", action="store_true", help="keep vLLM's chunked prefill on (CPU)"
    )
    parser.add_argument("--max-num-seqs", type=int, default=None, help="vLLM max_num_seqs")
    args = parser.parse_args(argv)
    options: dict[str, Any] = {}
    if args.chunked_prefill:
        options.update(enable_chunked_prefill=True, max_num_batched_tokens=None)
    if args.max_num_seqs:
        options["max_num_seqs"] = args.max_num_seqs
    r = direct_draws_per_second(
        args.model,
        prompts=args.prompts,
        n=args.n,
        max_tokens=args.max_tokens,
        seed=args.seed,
        llm_options=options,
    )
    print(
        f"{r.prompts} prompts x n={r.n} x {r.max_tokens} tokens: load {r.load_s:.1f} s, "
        f"generate {r.generate_s:.2f} s, {r.draws_per_s:.0f} draws/s, {r.tokens_per_s:.0f} tokens/s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
