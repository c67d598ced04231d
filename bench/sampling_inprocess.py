"""Where a sampling chunk's time goes, in one process on one engine: the direct call vs the
sampler's adapter on the sampler's request split, alternating.

    PYTHONPATH=$PWD /work/bin/vllm-slot .venv/bin/python bench/sampling_inprocess.py \\
        [--model DIR] [--prompts 8] [-n 512] [--max-tokens 32] [--pairs 4] [--dtype auto]

One ``VllmEngine`` (the sampler's adapter, loaded with the sampler's options) is loaded once;
each round times, in turn:
- ``direct``: ``LLM.generate`` on the engine's own ``vllm.LLM`` with P prompts and
  ``SamplingParams(n=n)``, as bench/sampling_direct.py does;
- ``adapter``: ``VllmEngine.generate`` on the requests ``sample_chunk`` builds for the same job
  (``build_requests`` of the chunk plan under the default settings: slices of at most
  ``chunk_max_n`` = 256 draws, so n = 512 becomes two requests per prompt);
- with ``--self-test-after K``: the sampler's start-up self-test (workers/sampler/health.py:
  one greedy and one seeded request) runs once after pair K, so the pairs before and after it
  show whether an engine that passed it (as every sampler's has) is slower afterwards;
- ``adapter+profile`` (last round only): the same under cProfile, whose top entries show what
  the sampler's own process does while the engine core runs (output processing,
  detokenisation, the adapter's conversion).
No Redis and no other service process run here: what differs between ``direct`` and
``adapter`` is the adapter and the request split, nothing else. Compare with
bench/sampling_overhead.py, where the rest of the service runs beside the engine.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._stack import add_workload_args, model_folder, prompt_texts  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_workload_args(parser, n=512, max_tokens=32)
    parser.add_argument("--pairs", type=int, default=4)
    parser.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16"])
    parser.add_argument(
        "--self-test-after", type=int, default=None, metavar="K", help="run the self-test here"
    )
    args = parser.parse_args()

    from shared.config import Settings
    from shared.planning import plan_chunks
    from shared.schemas import JobCreate
    from workers.sampler.engine import VllmEngine, dtype_candidates
    from workers.sampler.tasks import build_requests

    with model_folder(args.model) as model:
        settings = Settings(engine_dtype=args.dtype)
        engine = VllmEngine(model, settings, dtype=dtype_candidates(settings)[0])
        from vllm import SamplingParams

        texts = prompt_texts(args.prompts)
        spec = JobCreate.model_validate(
            {
                "model": "bench",
                "prompts": [{"id": f"p{i}", "prompt": t} for i, t in enumerate(texts)],
                "sampling": {"n": args.n, "temperature": 1.0, "max_tokens": args.max_tokens},
                "greedy": False,
            }
        )
        chunks = plan_chunks(
            "bench", spec, chunk_max_n=settings.chunk_max_n, chunk_draws=settings.chunk_draws
        )
        requests = [r for c in chunks for r in build_requests(spec, c)]
        params = SamplingParams(n=args.n, temperature=1.0, top_p=1.0, max_tokens=args.max_tokens)
        llm = engine._llm  # the very engine the adapter drives
        llm.generate(texts, SamplingParams(n=8, max_tokens=4), use_tqdm=False)  # warm-up

        def direct() -> int:
            return sum(len(o.outputs) for o in llm.generate(texts, params, use_tqdm=False))

        def adapter() -> int:
            return sum(len(outs) for outs in engine.generate(requests))

        rates: dict[str, list[float]] = {"direct": [], "adapter": []}
        for i in range(args.pairs):
            if args.self_test_after is not None and i == args.self_test_after:
                from workers.sampler.health import self_test

                self_test(engine)
                print(f"self-test ran after pair {i}", flush=True)
            for name, run in (
                (("adapter", adapter), ("direct", direct))
                if i % 2
                else (
                    ("direct", direct),
                    ("adapter", adapter),
                )
            ):
                started = time.perf_counter()
                draws = run()
                rates[name].append(draws / (time.perf_counter() - started))
        profiler = cProfile.Profile()
        started = time.perf_counter()
        profiler.enable()
        draws = adapter()
        profiler.disable()
        profiled_s = time.perf_counter() - started
        engine.close()

    print(
        f"workload: {args.prompts} prompts x n={args.n} x max_tokens={args.max_tokens} "
        f"({len(requests)} requests through the adapter), dtype {engine.dtype}, "
        f"{args.pairs} alternating pairs, load average {os.getloadavg()[0]:.1f} at the end"
    )
    for name, values in rates.items():
        print(
            f"{name:8s} draws/s: "
            + ", ".join(f"{v:.0f}" for v in values)
            + f"  (median {statistics.median(values):.0f})"
        )
    paired = [a / d for a, d in zip(rates["adapter"], rates["direct"], strict=True)]
    print("paired adapter/direct: " + ", ".join(f"{p:.3f}" for p in paired))
    print(f"adapter under cProfile: {draws / profiled_s:.0f} draws/s; this process's top costs:")
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(14)
    print("\n".join(line for line in out.getvalue().splitlines() if line.strip())[:4000])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
