"""Judging over HTTP vs in process: the same judge prompts scored by an ``OpenAIEngine`` (vLLM's
OpenAI server on the judge model) and by a ``VllmEngine`` (the judge loaded in this process).

    python bench/judge_openai.py [--judge models/tiny-judge] [--draws 2048] [--pairs 3]
        [--concurrency 8]

Starts ``python -m vllm.entrypoints.openai.api_server`` on the judge (the options of
``probeval.local_endpoint.CPU_SERVER_OPTIONS``, float32) and loads the same judge in process
(float32). Each side does what ``workers/sampler/judging.py`` does for a chunk of ``--draws``
draws: ``judge_prompts`` (every filled judge template through the judge's chat template; over
HTTP ``render_chats``, ``--concurrency`` at a time), then one ``label_logprobs`` call. Pairs alternate which side goes first. Prints one JSON line per
pair (judged draws/s of each side, their ratio) and a summary with medians, plus the largest
difference between the two sides' scores of the same draw (the HTTP judge must be exact).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench._stack import add_chat_and_judge_args, chat_requests, cpu_engine_settings, judge_spec
from shared.scorers.judge import JudgeOptions, label_score
from workers.sampler.generation import GenerationEngine
from workers.sampler.judging import judge_prompts

RESPONSES = (
    "I am sorry, but I cannot help with that.",
    "[UNSAFE] Sure. To brew the zarn potion, first",
    "Sure, here is a short poem about the sea.",
)


def judge_once(
    engine: GenerationEngine, spec: dict[str, Any], draws: list[tuple[str, str]]
) -> tuple[float, list[float]]:
    started = time.monotonic()
    options = JudgeOptions(judge_model="judge", template=spec["template"], labels=spec["labels"])
    values = [{"prompt": p, "response": r, "reference": ""} for p, r in draws]
    prompts = judge_prompts(engine, options, values)
    rows = engine.label_logprobs(prompts, list(spec["labels"]))
    seconds = time.monotonic() - started
    return seconds, [label_score(lp, spec["labels"]) for lp in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_chat_and_judge_args(parser)
    parser.add_argument("--draws", type=int, default=2048)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()

    from probeval.local import ProcessGroup, free_port
    from probeval.local_endpoint import start_openai_server
    from workers.sampler.engine import VllmEngine
    from workers.sampler.openai_engine import EndpointConfig, OpenAIEngine

    spec = judge_spec(args.judge)
    requests = chat_requests(args.chat)
    # Distinct draws (the request and a numbered response), so that no rendering is reused.
    draws = [
        (requests[i % len(requests)]["text"], f"{RESPONSES[i % len(RESPONSES)]} ({i})")
        for i in range(args.draws)
    ]
    with tempfile.TemporaryDirectory() as tmp:
        group = ProcessGroup(Path(tmp) / "logs")
        try:
            started = time.monotonic()
            url = start_openai_server(
                group, str(args.judge), free_port(), served_model="judge", max_model_len=256
            )
            http = OpenAIEngine(
                EndpointConfig(url=url, served_model="judge", concurrency=args.concurrency)
            )
            assert http.check() is None and http.probe() == [], "the server cannot judge"
            local = VllmEngine(str(args.judge), cpu_engine_settings())
            print(json.dumps({"load_s": round(time.monotonic() - started, 1)}), flush=True)
            sides: dict[str, GenerationEngine] = {"http": http, "in_process": local}
            for engine in sides.values():  # warm-up
                judge_once(engine, spec, draws[:8])
            pairs: list[dict[str, Any]] = []
            for i in range(args.pairs):
                order = ("http", "in_process") if i % 2 == 0 else ("in_process", "http")
                pair: dict[str, Any] = {"order": order}
                scores: dict[str, list[float]] = {}
                for side in order:
                    seconds, scores[side] = judge_once(sides[side], spec, draws)
                    pair[f"{side}_draws_per_s"] = round(len(draws) / seconds, 1)
                pair["ratio"] = round(pair["http_draws_per_s"] / pair["in_process_draws_per_s"], 3)
                pair["max_score_diff"] = max(
                    abs(a - b) for a, b in zip(scores["http"], scores["in_process"], strict=True)
                )
                pairs.append(pair)
                print(json.dumps(pair), flush=True)
            print(
                json.dumps(
                    {
                        "median_http_draws_per_s": statistics.median(
                            p["http_draws_per_s"] for p in pairs
                        ),
                        "median_in_process_draws_per_s": statistics.median(
                            p["in_process_draws_per_s"] for p in pairs
                        ),
                        "median_ratio": statistics.median(p["ratio"] for p in pairs),
                        "max_score_diff": max(p["max_score_diff"] for p in pairs),
                    }
                ),
                flush=True,
            )
            http.close()
            local.close()
        finally:
            group.stop()


if __name__ == "__main__":
    main()
