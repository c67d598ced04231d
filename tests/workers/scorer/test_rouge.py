"""workers/scorer/rouge.py against Google's rouge_score, the reference it must equal exactly."""

from __future__ import annotations

import random

import pytest
from rouge_score import rouge_scorer
from rouge_score.tokenize import tokenize

from workers.scorer.rouge import rouge_l, rouge_tokens
from workers.scorer.scoring import rouge_l_f, rouge_l_recall

REFERENCE = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
# Words that repeat (so the LCS has choices), case, digits, punctuation, non-ASCII letters
# (rouge_score turns them into separators), empty and whitespace-only texts.
_WORDS = [
    "the",
    "a",
    "old",
    "mill",
    "Mill",
    "MILL",
    "river",
    "42",
    "x7",
    "über",
    "café",
    "naïve",
    "İstanbul",
    "ß",
    ",",
    ".",
    "!",
    "--",
    "'s",
    "\n",
    "\t",
]


def _text(rng: random.Random, max_words: int) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(rng.randint(0, max_words)))


@pytest.mark.parametrize("seed", range(4))
def test_equal_to_rouge_score_on_random_texts(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(2_000):
        reference = _text(rng, 12)
        text = _text(rng, 70)  # long enough for the bit state to span several machine words
        expected = REFERENCE.score(reference, text)["rougeL"]
        got = rouge_l(text, reference)
        # The same float expressions: equality, not closeness.
        assert got == (expected.precision, expected.recall, expected.fmeasure), (reference, text)
        assert rouge_tokens(text) == tokenize(text, None)


def test_long_reference_and_edge_cases() -> None:
    rng = random.Random(7)
    long_reference = " ".join(rng.choice(_WORDS[:8]) for _ in range(200))  # > 64 bit positions
    for text in ["", "   ", "!!!", long_reference, long_reference[::-1], _text(rng, 300)]:
        for reference in [long_reference, "", "the old mill", "--"]:
            expected = REFERENCE.score(reference, text)["rougeL"]
            assert rouge_l(text, reference) == (
                expected.precision,
                expected.recall,
                expected.fmeasure,
            )


def test_scorer_functions_read_recall_and_f() -> None:
    text, reference = "the old mill by the river", "old river mill"
    expected = REFERENCE.score(reference, text)["rougeL"]
    assert rouge_l_recall(text, reference) == expected.recall == 2 / 3
    assert rouge_l_f(text, reference) == expected.fmeasure
    assert rouge_l_recall(text, None) == 0.0
