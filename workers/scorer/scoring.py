"""The built-in per-draw scoring functions (text and the prompt's reference -> score in [0, 1])
and ``make_scorer``, which builds any registered scorer's function (shared/scorers)."""

from __future__ import annotations

import re
import string

import regex
from pydantic import BaseModel

from shared.scorers import ScoreFn, scorer_definition
from shared.scorers.builtin import RegexOptions
from shared.scorers.registry import load_factory
from workers.scorer.rouge import rouge_l

# A user-supplied pattern must not hang a scorer (catastrophic backtracking): the `regex`
# module supports a per-search timeout, `re` does not.
REGEX_TIMEOUT_S = 1.0

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans("", "", string.punctuation)


def normalize_answer(text: str) -> str:
    """SQuAD-style normalisation: lower case, no punctuation, no articles, single spaces."""
    text = text.lower().translate(_PUNCT)
    return " ".join(_ARTICLES.sub(" ", text).split())


# ROUGE-L as Google's rouge_score (the reference implementation of ROUGE-1.5.5) computes it with
# stemming off, as in the paper's setup; workers/scorer/rouge.py gives the same floats about seven
# times faster per draw (docs/BENCHMARKS.md, pipeline ceiling).
def rouge_l_recall(text: str, reference: str | None) -> float:
    """ROUGE-L recall: the longest common subsequence's share of the reference's tokens."""
    return rouge_l(text, reference or "")[1]


def rouge_l_f(text: str, reference: str | None) -> float:
    """ROUGE-L F-measure of the draw against the reference."""
    return rouge_l(text, reference or "")[2]


def exact_match(text: str, reference: str | None) -> float:
    """1.0 when the draw equals the reference after SQuAD-style normalisation."""
    return float(normalize_answer(text) == normalize_answer(reference or ""))


def contains(text: str, reference: str | None) -> float:
    """1.0 when the reference occurs in the draw, ignoring case."""
    return float((reference or "").casefold() in text.casefold())


def make_rouge_l_recall(options: BaseModel) -> ScoreFn:
    """Registry factory of ``rouge_l_recall`` (it takes no options)."""
    return rouge_l_recall


def make_rouge_l_f(options: BaseModel) -> ScoreFn:
    """Registry factory of ``rouge_l_f`` (it takes no options)."""
    return rouge_l_f


def make_exact_match(options: BaseModel) -> ScoreFn:
    """Registry factory of ``exact_match`` (it takes no options)."""
    return exact_match


def make_contains(options: BaseModel) -> ScoreFn:
    """Registry factory of ``contains`` (it takes no options)."""
    return contains


def make_regex(options: BaseModel) -> ScoreFn:
    """Registry factory: 1.0 when the pattern matches the draw, each search time-limited."""
    assert isinstance(options, RegexOptions)
    compiled = regex.compile(options.pattern)

    def regex_search(text: str, reference: str | None) -> float:
        try:
            return float(compiled.search(text, timeout=REGEX_TIMEOUT_S) is not None)
        except TimeoutError as exc:
            raise ValueError(f"scorer.pattern took over {REGEX_TIMEOUT_S}s on one draw") from exc

    return regex_search


def make_scorer(spec: BaseModel) -> ScoreFn:
    """The scoring function a job's ``scorer`` asks for, through the registry; a score outside
    [0, 1] (a faulty plug-in) is an error, never a stored score."""
    definition = scorer_definition(str(getattr(spec, "name", "")))
    score = load_factory(definition)(spec)

    def checked(text: str, reference: str | None) -> float:
        value = float(score(text, reference))
        if not (0.0 <= value <= 1.0):
            raise ValueError(f"scorer {definition.name!r} returned {value!r}, outside [0, 1]")
        return value

    return checked
