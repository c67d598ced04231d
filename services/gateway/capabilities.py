"""Checks of a job against what its samplers registered: chat templates, the judge model and
the judge's tokenizer (labels need distinct first tokens). Each error names the field."""

from __future__ import annotations

from tokenizers import Tokenizer

from shared.config import Settings
from shared.errors import InvalidInput, NotFound
from shared.schemas import JobCreate
from shared.scorers.judge import JudgeOptions, label_first_tokens
from shared.store import Store

# Parsed tokenizers by the SHA-256 their samplers registered: a tokenizer.json can be megabytes,
# so it is read from Redis and parsed once per distinct tokenizer, not per submission.
_TOKENIZERS: dict[str, Tokenizer] = {}
_MAX_CACHED = 8


def judge_tokenizer(store: Store, model: str) -> Tokenizer | None:
    """The model's registered tokenizer, or None when its samplers registered none."""
    caps = store.capabilities(model)
    if caps is None or caps.tokenizer_sha256 is None:
        return None
    cached = _TOKENIZERS.get(caps.tokenizer_sha256)
    if cached is not None:
        return cached
    text = store.tokenizer_json(model)
    if text is None:
        return None
    if len(_TOKENIZERS) >= _MAX_CACHED:
        _TOKENIZERS.clear()
    tokenizer = _TOKENIZERS[caps.tokenizer_sha256] = Tokenizer.from_str(text)
    return tokenizer


def needs_capabilities(spec: JobCreate) -> bool:
    """Whether the job has anything ``check_capabilities`` checks (chat prompts, a judge)."""
    return isinstance(spec.scorer, JudgeOptions) or any(
        p.messages is not None for p in spec.prompts
    )


def check_capabilities(spec: JobCreate, store: Store, settings: Settings) -> None:
    """Chat prompts need a model with a chat template; a judge scorer needs a live judge model
    that can judge and whose labels have distinct first tokens in its registered tokenizer.
    (Whether the job's own model is live is the admission step's check: a model that never
    registered is left to it, so that its 404 names ``model``.)"""
    chat = [i for i, p in enumerate(spec.prompts) if p.messages is not None]
    if chat:
        caps = store.capabilities(spec.model)
        if caps is not None and not caps.chat_template:
            raise InvalidInput(
                f"prompts[{chat[0]}].messages: model {spec.model!r} has no chat template, so it "
                "cannot take messages; send 'prompt' (raw text) instead",
                param=f"prompts[{chat[0]}].messages",
            )
    scorer = spec.scorer
    if isinstance(scorer, JudgeOptions):
        served = {m.name for m in store.live_models(ttl_s=settings.worker_ttl_s)}
        if scorer.judge_model not in served:
            allowed = ", ".join(sorted(served)) or "none: start a sampler worker first"
            # Not found, as an unserved ``model`` is: server state, not a malformed request.
            raise NotFound(
                f"scorer.judge_model: no live sampler serves {scorer.judge_model!r}; served "
                f"models: {allowed}",
                param="scorer.judge_model",
            )
        judge_caps = store.capabilities(scorer.judge_model)
        if judge_caps is None or not judge_caps.judging:
            raise InvalidInput(
                f"scorer.judge_model: the samplers of {scorer.judge_model!r} cannot judge (an "
                "endpoint that does not return label log-probabilities); serve the judge with "
                "vLLM's OpenAI server or an in-process sampler",
                param="scorer.judge_model",
            )
        tokenizer = judge_tokenizer(store, scorer.judge_model)
        if tokenizer is not None:
            label_first_tokens(
                scorer.labels, lambda text: tokenizer.encode(text, add_special_tokens=False).ids
            )
