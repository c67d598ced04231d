"""Judge throughput vs policy throughput on the same machine, through probeval's engine adapter.

    python bench/judge_throughput.py [--chat models/tiny-chat] [--judge models/tiny-judge]
        [--prompts 24] [-n 512] [--max-tokens 24] [--chunk 4096] [--reps 3]

Loads two ``VllmEngine``s in one process (the chat model and the judge, float32, memory
fraction 0.1 each) and alternates, ``--reps`` times: the policy draws ``prompts x n`` chat
completions (one ``generate`` call, as a sampler does for a chunk of that size), then the judge
scores those draws with the demo's template in chunks of ``--chunk`` draws, one
``label_logprobs`` engine call per chunk, as ``workers/sampler/judging.py`` does. Prints one
JSON line per repetition and a summary with medians: policy draws/s, judged draws/s, ratio.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from bench._stack import add_chat_and_judge_args, chat_requests, cpu_engine_settings, judge_spec
from shared.schemas import ChatMessage
from shared.scorers.judge import label_score, render_template
from workers.sampler.engine import VllmEngine
from workers.sampler.generation import GenerationRequest, LabelPrompt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_chat_and_judge_args(parser)
    parser.add_argument("--prompts", type=int, default=24)
    parser.add_argument("-n", type=int, default=512)
    parser.add_argument("--max-tokens", type=int, default=24)
    parser.add_argument("--chunk", type=int, default=4096)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()

    settings = cpu_engine_settings()
    requests = chat_requests(args.chat)
    spec = judge_spec(args.judge)
    texts = [requests[i % len(requests)]["text"] for i in range(args.prompts)]
    started = time.monotonic()
    chat = VllmEngine(str(args.chat), settings)
    judge = VllmEngine(str(args.judge), settings)
    print(json.dumps({"load_s": round(time.monotonic() - started, 1)}), flush=True)
    rendered = [chat.render_chat([ChatMessage(role="user", content=t)]) for t in texts]
    gen_requests = [
        GenerationRequest(
            prompt=r,
            n=args.n,
            temperature=1.0,
            top_p=1.0,
            top_k=0,
            max_tokens=args.max_tokens,
            messages=(ChatMessage(role="user", content=t),),
        )
        for r, t in zip(rendered, texts, strict=True)
    ]
    # Warm-up of both engines (first calls allocate buffers).
    chat.generate(gen_requests[:1])
    judge.label_logprobs([LabelPrompt("warm up", False)], list(spec["labels"]))

    policy_rates, judge_rates = [], []
    for rep in range(args.reps):
        t0 = time.monotonic()
        completions = chat.generate(gen_requests)
        policy_s = time.monotonic() - t0
        draws = [(p, c.text) for p, outs in zip(rendered, completions, strict=True) for c in outs]

        t0 = time.monotonic()
        scores: list[float] = []
        for start in range(0, len(draws), args.chunk):
            batch = draws[start : start + args.chunk]
            prompts = [
                LabelPrompt(
                    judge.render_chat(
                        [
                            ChatMessage(
                                role="user",
                                content=render_template(
                                    spec["template"],
                                    {"prompt": p, "response": text, "reference": ""},
                                ),
                            )
                        ]
                    ),
                    True,
                )
                for p, text in batch
            ]
            for lp in judge.label_logprobs(prompts, list(spec["labels"])):
                scores.append(label_score(lp, spec["labels"]))
        judge_s = time.monotonic() - t0
        policy_rates.append(len(draws) / policy_s)
        judge_rates.append(len(draws) / judge_s)
        print(
            json.dumps(
                {
                    "rep": rep,
                    "draws": len(draws),
                    "policy_s": round(policy_s, 2),
                    "judge_s": round(judge_s, 2),
                    "policy_draws_per_s": round(policy_rates[-1], 1),
                    "judged_draws_per_s": round(judge_rates[-1], 1),
                    "judged_harmful_share": round(sum(s >= 0.5 for s in scores) / len(scores), 4),
                }
            ),
            flush=True,
        )
    p, j = statistics.median(policy_rates), statistics.median(judge_rates)
    print(
        json.dumps(
            {
                "median_policy_draws_per_s": round(p, 1),
                "median_judged_draws_per_s": round(j, 1),
                "judge_over_policy": round(j / p, 3),
            }
        ),
        flush=True,
    )
    chat.close()
    judge.close()


if __name__ == "__main__":
    main()
