"""Per-draw scoring functions: text (and the prompt's reference) -> score in [0, 1]."""

from __future__ import annotations

import re
import string
from collections.abc import Callable
from functools import lru_cache

import regex
from rouge_score import rouge_scorer

from shared.schemas import ScorerSpec

Scorer = Callable[[str, str | None], float]

# A user-supplied pattern must not hang a scorer (catastrophic backtracking): the `regex`
# module supports a per-search timeout, `re` does not.
REGEX_TIMEOUT_S = 1.0

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans("", "", string.punctuation)


@lru_cache(maxsize=1)
def _rouge() -> rouge_scorer.RougeScorer:
    # Google's reference implementation of ROUGE-1.5.5; stemming off, as in the paper's setup.
    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)


def normalize_answer(text: str) -> str:
    """SQuAD-style normalisation: lower case, no punctuation, no articles, single spaces."""
    text = text.lower().translate(_PUNCT)
    return " ".join(_ARTICLES.sub(" ", text).split())


def rouge_l_recall(text: str, reference: str | None) -> float:
    return float(_rouge().score(reference or "", text)["rougeL"].recall)


def rouge_l_f(text: str, reference: str | None) -> float:
    return float(_rouge().score(reference or "", text)["rougeL"].fmeasure)


def exact_match(text: str, reference: str | None) -> float:
    return float(normalize_answer(text) == normalize_answer(reference or ""))


def contains(text: str, reference: str | None) -> float:
    return float((reference or "").casefold() in text.casefold())


def make_scorer(spec: ScorerSpec) -> Scorer:
    """The scoring function a job asked for."""
    if spec.name == "regex":
        compiled = regex.compile(spec.pattern or "")

        def regex_search(text: str, reference: str | None) -> float:
            try:
                return float(compiled.search(text, timeout=REGEX_TIMEOUT_S) is not None)
            except TimeoutError as exc:
                raise ValueError(
                    f"scorer.pattern took over {REGEX_TIMEOUT_S}s on one draw"
                ) from exc

        return regex_search
    return {
        "rouge_l_recall": rouge_l_recall,
        "rouge_l_f": rouge_l_f,
        "exact_match": exact_match,
        "contains": contains,
    }[spec.name]
