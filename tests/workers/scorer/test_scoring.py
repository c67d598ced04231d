"""Scoring functions; expected values worked out by hand from each definition."""

import pytest

from shared.schemas import parse_scorer
from workers.scorer.scoring import make_scorer, normalize_answer


def score(name: str, text: str, reference: str | None, pattern: str | None = None) -> float:
    options = {"name": name} if pattern is None else {"name": name, "pattern": pattern}
    return make_scorer(parse_scorer(options))(text, reference)


def test_rouge_l_recall_counts_reference_tokens_in_order() -> None:
    # LCS("the capital is paris", "paris is the capital") = "the capital" (2 of 4 reference tokens).
    assert score("rouge_l_recall", "paris is the capital", "the capital is paris") == pytest.approx(
        0.5
    )
    assert score("rouge_l_recall", "well, the capital is paris!", "the capital is paris") == 1.0
    assert score("rouge_l_recall", "london", "paris") == 0.0


def test_rouge_l_f_penalises_extra_words() -> None:
    # recall 1, precision 1/3 -> F = 2 * 1 * (1/3) / (4/3) = 0.5
    assert score("rouge_l_f", "paris in france", "paris") == pytest.approx(0.5)


def test_exact_match_normalises() -> None:
    assert normalize_answer("The  Paris!") == "paris"
    assert score("exact_match", " the Paris. ", "Paris") == 1.0
    assert score("exact_match", "Paris, France", "Paris") == 0.0


def test_contains_is_case_insensitive() -> None:
    assert score("contains", "I think it is PARIS.", "paris") == 1.0
    assert score("contains", "Lyon", "paris") == 0.0


def test_regex_search() -> None:
    assert score("regex", "call 555-0100 now", None, pattern=r"\d{3}-\d{4}") == 1.0
    assert score("regex", "no number", None, pattern=r"\d{3}-\d{4}") == 0.0


def test_scores_stay_in_unit_interval() -> None:
    for name in ("rouge_l_recall", "rouge_l_f", "exact_match", "contains"):
        for text in ("", "paris", "x " * 50):
            assert 0.0 <= score(name, text, "paris") <= 1.0
