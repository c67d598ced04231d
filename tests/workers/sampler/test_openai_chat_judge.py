"""OpenAIEngine's chat prompts, judging and start-up probe against a fake vLLM server
(httpx.MockTransport) whose answers have the shapes vLLM 0.32's OpenAI server gave on
models/tiny-chat (2026-12-01). The real servers are in tests/e2e/test_openai_chat_judge.py."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from shared.errors import InvalidInput
from shared.schemas import ChatMessage
from workers.sampler.generation import GenerationRequest, LabelPrompt, PromptTooLong
from workers.sampler.openai_engine import JUDGE_BATCH, EndpointConfig, OpenAIEngine

RENDERED = "<|user|>\nHi<|end|>\n<|assistant|>\n"
RENDERED_IDS = [4, 204, 312, 19, 1, 204, 5, 204]
VOCAB = {"yes": [351], "no": [333], "yellow": [351, 9]}
NO_TEMPLATE = (
    "As of transformers v4.44, default chat template is no longer allowed, so you must provide "
    "a chat template if the tokenizer does not define one."
)
MESSAGES = (ChatMessage(role="user", content="Hi"),)


class FakeVllm:
    """/v1/models, /tokenize, /detokenize, /v1/chat/completions and /v1/completions."""

    def __init__(self, *, template: bool = True, label_logprobs: bool = True) -> None:
        self.template = template
        self.label_logprobs = label_logprobs
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.prompt_ids = RENDERED_IDS  # what the chat endpoint says it sampled from
        self.too_long = ""  # a judge prompt containing this is over the context

    def __call__(self, req: httpx.Request) -> httpx.Response:
        path = req.url.path
        if path == "/v1/models":
            return httpx.Response(200, json={"data": [{"id": "m", "max_model_len": 256}]})
        body = json.loads(req.content)
        self.calls.append((path, body))
        if path == "/tokenize" and "messages" in body:
            if not self.template:
                return httpx.Response(400, json={"error": {"message": NO_TEMPLATE, "code": 400}})
            return httpx.Response(200, json={"tokens": RENDERED_IDS, "count": 8})
        if path == "/tokenize":
            return httpx.Response(200, json={"tokens": VOCAB.get(body["prompt"], [7, 8])})
        if path == "/detokenize":
            assert body["tokens"] == RENDERED_IDS
            return httpx.Response(200, json={"prompt": RENDERED})
        if path == "/v1/chat/completions":
            choices = [
                {"index": i, "message": {"role": "assistant", "content": f"c{i}"}, "token_ids": [1]}
                for i in range(body["n"])
            ]
            return httpx.Response(
                200, json={"choices": choices, "prompt_token_ids": self.prompt_ids}
            )
        assert path == "/v1/completions"
        prompts = body["prompt"]
        if self.too_long and any(self.too_long in p for p in prompts):
            message = "This model's maximum context length is 256 tokens. However, your prompt "
            message += "contains at least 257 input tokens"
            return httpx.Response(400, json={"error": {"message": message}})
        choices = []
        for i, prompt in enumerate(prompts):
            top = {"token_id:99": -0.1}  # the sampled token, listed beside the requested ones
            if self.label_logprobs:
                top.update(
                    {
                        f"token_id:{t}": -1.0 - len(prompt) - t / 1000
                        for t in body["logprob_token_ids"]
                    }
                )
            choices.append({"index": i, "text": "x", "logprobs": {"top_logprobs": [top]}})
        return httpx.Response(200, json={"choices": choices})

    def paths(self) -> list[str]:
        return [p for p, _ in self.calls]


def engine(server: FakeVllm, probe: bool = True) -> OpenAIEngine:
    cfg = EndpointConfig(url="http://fleet:8000", served_model="m", retries=1, backoff_max_s=0.01)
    e = OpenAIEngine(cfg, transport=httpx.MockTransport(server))
    assert e.check() is None
    if probe:
        e.probe()
        server.calls.clear()
    return e


def chat_request(n: int, **kw: Any) -> GenerationRequest:
    options: dict[str, Any] = dict(temperature=1.0, top_p=1.0, top_k=0, max_tokens=4, seed=3)
    options.update(kw)
    return GenerationRequest(prompt=RENDERED, n=n, messages=MESSAGES, **options)


def test_the_probe_finds_chat_and_judging_on_vllm() -> None:
    server = FakeVllm()
    e = engine(server, probe=False)
    assert (e.chat_template, e.judging) == (False, False)  # nothing claimed before the probe
    assert e.probe() == []
    assert (e.chat_template, e.judging) == (True, True)


def test_the_probe_says_why_a_model_without_template_or_label_logprobs_gets_neither() -> None:
    e = engine(FakeVllm(template=False, label_logprobs=False), probe=False)
    chat, judge = e.probe()
    assert (e.chat_template, e.judging) == (False, False)
    assert "no chat prompts" in chat and "default chat template is no longer allowed" in chat
    assert "no judging" in judge and "logprob_token_ids" in judge
    with pytest.raises(InvalidInput, match="no chat template"):
        e.render_chat(MESSAGES)


def test_the_rendering_is_the_servers_tokenize_then_detokenize_once_per_messages() -> None:
    server = FakeVllm()
    e = engine(server)
    assert e.render_chat(MESSAGES) == e.render_chat(MESSAGES) == RENDERED
    assert server.paths() == ["/tokenize", "/detokenize"]
    assert server.calls[0][1] == {
        "model": "m",
        "messages": [{"role": "user", "content": "Hi"}],
        "add_generation_prompt": True,
    }


def test_chat_prompts_go_to_chat_completions_with_n_and_the_seed() -> None:
    server = FakeVllm()
    e = engine(server)
    e.render_chat(MESSAGES)
    out = e.generate([chat_request(3), chat_request(5, temperature=0.0, seed=None)])
    assert [c.text for c in out[0]] == ["c0", "c1", "c2"]
    assert [c.text for c in out[1]] == ["c0"] * 5  # greedy: one draw, repeated
    # The two requests are sent concurrently: tell them apart by their n, not their order.
    chats = [b for p, b in server.calls if p == "/v1/chat/completions"]
    assert sorted(b["n"] for b in chats) == [1, 3]
    sampled, greedy = sorted(chats, key=lambda b: -b["n"])
    assert sampled == {
        "model": "m",
        "messages": [{"role": "user", "content": "Hi"}],
        "n": 3,
        "temperature": 1.0,
        "top_p": 1.0,
        "top_k": 0,
        "max_tokens": 4,
        "return_token_ids": True,
        "seed": 3,
    }
    assert greedy["n"] == 1 and greedy["temperature"] == 0.0 and "seed" not in greedy


def test_a_chat_response_sampled_from_another_prompt_than_the_stored_rendering_fails() -> None:
    server = FakeVllm()
    e = engine(server)
    e.render_chat(MESSAGES)
    server.prompt_ids = [4, 204, 999]
    with pytest.raises(RuntimeError, match="differs from the rendering probeval stored"):
        e.generate([chat_request(2)])
    server.calls.clear()
    e.render_chat(MESSAGES)  # the stale rendering was forgotten: rendered again
    assert server.paths() == ["/tokenize", "/detokenize"]


def test_judging_requests_exactly_the_label_tokens_in_batches() -> None:
    server = FakeVllm()
    e = engine(server)
    prompts = [LabelPrompt(f"judge {i}", True) for i in range(JUDGE_BATCH + 3)]
    rows = e.label_logprobs(prompts, ["yes", "no"])
    assert len(rows) == len(prompts)
    assert rows[0] == {"yes": -1.0 - 7 - 0.351, "no": -1.0 - 7 - 0.333}
    judge = [b for p, b in server.calls if p == "/v1/completions"]
    assert [len(b["prompt"]) for b in judge] == [JUDGE_BATCH, 3]
    assert judge[0]["logprob_token_ids"] == [351, 333]
    assert judge[0]["max_tokens"] == 1 and judge[0]["temperature"] == 0.0
    assert judge[0]["add_special_tokens"] is False  # chat-rendered prompts carry their own
    assert judge[0]["return_tokens_as_token_ids"] is True
    # Each label is tokenized once per worker, without special tokens ("yes" by the probe).
    tokenized = [b for p, b in server.calls if p == "/tokenize"]
    assert tokenized == [{"model": "m", "prompt": "no", "add_special_tokens": False}]
    e.label_logprobs(prompts[:1], ["yes", "no"])
    assert server.paths().count("/tokenize") == 1


def test_raw_and_chat_rendered_judge_prompts_never_share_a_request() -> None:
    server = FakeVllm()
    e = engine(server)
    prompts = [LabelPrompt("a", False), LabelPrompt("b", True), LabelPrompt("c", True)]
    e.label_logprobs(prompts, ["yes", "no"])
    judge = [b for p, b in server.calls if p == "/v1/completions"]
    assert [(b["prompt"], b["add_special_tokens"]) for b in judge] == [
        (["a"], True),
        (["b", "c"], False),
    ]


def test_labels_sharing_a_first_token_are_refused_naming_the_labels() -> None:
    e = engine(FakeVllm())
    with pytest.raises(InvalidInput, match="start with the same token") as info:
        e.label_logprobs([LabelPrompt("p", False)], ["yes", "yellow"])
    assert info.value.param == "scorer.labels"


def test_a_judge_prompt_over_the_context_is_named_by_its_position() -> None:
    server = FakeVllm()
    server.too_long = "LONG"
    e = engine(server)
    prompts = [LabelPrompt("ok", False), LabelPrompt("LONG" * 10, False), LabelPrompt("ok", False)]
    with pytest.raises(PromptTooLong) as info:
        e.label_logprobs(prompts, ["yes", "no"])
    assert info.value.request_index == 1
    assert "the model's context is 256 tokens" in info.value.message


def test_a_server_that_ignores_logprob_token_ids_is_an_error_not_a_guess() -> None:
    e = engine(FakeVllm())
    e._client = httpx.Client(  # the same server, now without label log-probabilities
        base_url=e.base, transport=httpx.MockTransport(FakeVllm(label_logprobs=False))
    )
    with pytest.raises(RuntimeError, match="did not return the log-probability of label 'yes'"):
        e.label_logprobs([LabelPrompt("p", False)], ["yes", "no"])


def test_a_chunks_judge_prompts_are_rendered_concurrently_through_render_chats() -> None:
    from shared.scorers.judge import JudgeOptions
    from workers.sampler.judging import judge_prompts

    server = FakeVllm()
    e = engine(server)
    options = JudgeOptions(judge_model="m", template="R: {response}", labels={"yes": 1, "no": 0})
    values = [{"prompt": "p", "response": f"r{i}", "reference": ""} for i in range(5)]
    prompts = judge_prompts(e, options, values)
    assert prompts == [LabelPrompt(RENDERED, True)] * 5  # the fake renders every chat alike
    rendered = [b["messages"][0]["content"] for p, b in server.calls if p == "/tokenize"]
    assert sorted(rendered) == [f"R: r{i}" for i in range(5)]


def test_an_engine_without_render_chats_renders_judge_prompts_one_by_one() -> None:
    from shared.scorers.judge import JudgeOptions
    from workers.sampler.judging import judge_prompts

    class InProcess:  # what VllmEngine offers: render_chat only
        chat_template = True

        def render_chat(self, messages: Any) -> str:
            return f"<{messages[0].content}>"

    options = JudgeOptions(judge_model="m", template="R: {response}", labels={"yes": 1, "no": 0})
    values = [{"prompt": "p", "response": r, "reference": ""} for r in ("a", "b")]
    assert judge_prompts(InProcess(), options, values) == [  # type: ignore[arg-type]
        LabelPrompt("<R: a>", True),
        LabelPrompt("<R: b>", True),
    ]
    InProcess.chat_template = False
    assert judge_prompts(InProcess(), options, values)[0] == LabelPrompt("R: a", False)  # type: ignore[arg-type]
