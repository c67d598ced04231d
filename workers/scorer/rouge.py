"""ROUGE-L of one draw against its reference, equal to Google's ``rouge_score`` (stemming off)
bit for bit, at a fraction of its cost per draw.

``rouge_score.RougeScorer(["rougeL"]).score(reference, text)`` tokenises both texts with
``rouge_score.tokenize.tokenize`` (lower case; every run of characters outside ``[a-z0-9]`` is a
space; empty tokens dropped) and fills a Python dynamic-programming table of
len(reference) x len(text) cells. A scorer process calls it once per draw with the same reference
for thousands of draws, so here:

* the reference's tokens are kept between calls (``_reference``: one cache entry per distinct
  reference, bounded), as a bit mask per distinct token;
* the longest common subsequence is counted with the bit-parallel recurrence of Allison and Dix
  (1986, "A bit-string longest-common-subsequence algorithm", IPL 23) in Hyyro's form: one
  integer add, subtract, and, or per text token that occurs in the reference (tokens that do not
  occur leave the state as it is), instead of len(reference) table cells per token;
* precision, recall and F are the same float expressions as ``rouge_score``'s ``_score_lcs`` and
  ``scoring.fmeasure``, so the results are the same floats.

tests/workers/test_rouge.py holds this equal to ``rouge_score`` on random and adversarial texts.
"""

from __future__ import annotations

import re
from functools import lru_cache

__all__ = ["rouge_l", "rouge_tokens"]

# rouge_score.tokenize: text.lower(), NON_ALPHANUM_RE = [^a-z0-9]+ -> " ", split on \s+, keep
# tokens matching ^[a-z0-9]+$. What survives is exactly the maximal runs of [a-z0-9].
_TOKEN = re.compile(r"[a-z0-9]+")
_REFERENCE_CACHE = 1024


def rouge_tokens(text: str) -> list[str]:
    """The tokens ``rouge_score.tokenize.tokenize(text, None)`` returns."""
    return _TOKEN.findall(text.lower())


@lru_cache(maxsize=_REFERENCE_CACHE)
def _reference(reference: str) -> tuple[dict[str, int], int]:
    """Per distinct token of the reference, the bit mask of its positions; and its length."""
    masks: dict[str, int] = {}
    tokens = rouge_tokens(reference)
    for position, token in enumerate(tokens):
        masks[token] = masks.get(token, 0) | (1 << position)
    return masks, len(tokens)


def lcs_length(masks: dict[str, int], length: int, tokens: list[str]) -> int:
    """Length of the longest common subsequence of the reference (``masks``, ``length``) and
    ``tokens``. The bits of ``v`` set to 0 mark the reference positions matched so far."""
    full = (1 << length) - 1
    v = full
    for token in tokens:
        match = masks.get(token)
        if match:
            u = v & match
            v = ((v + u) | (v - u)) & full
    return length - v.bit_count()


def rouge_l(text: str, reference: str) -> tuple[float, float, float]:
    """(precision, recall, F) of ROUGE-L of ``text`` against ``reference``, as ``rouge_score``
    computes them (all 0 when either has no token)."""
    masks, length = _reference(reference)
    tokens = rouge_tokens(text)
    if not length or not tokens:
        return 0.0, 0.0, 0.0
    lcs = lcs_length(masks, length, tokens)
    precision = lcs / len(tokens)
    recall = lcs / length
    fmeasure = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return precision, recall, fmeasure
