"""An invented knowledge base: fictitious authors, each with a birthplace, a book and an award.

Everything is made up from syllables by a seeded generator, so the facts exist nowhere but in
this file's output: a model can only know them because it was trained on them here, and an
"unlearned" model that still produces them has leaked them. Every answer is unique across the
knowledge base, so a forget answer in a sample cannot be a legitimate answer to another question.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

# fmt: off
ONSETS = ("b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "dr",
          "gr", "kr", "th", "tr", "sh", "st", "vr")
VOWELS = ("a", "e", "i", "o", "u", "a", "e", "o", "ae", "ou", "ei")
CODAS = ("", "n", "r", "l", "s", "th", "nd", "m")

# Each question kind (also the Author field that holds its answer) and its question.
QUESTION_TEMPLATES = {
    "birthplace": "Where was {name} born?",
    "book": "What book did {name} write?",
    "award": "Which award did {name} win?",
}
# One noun per author, so that no two answers share a word: a wrong answer then has ROUGE-L
# recall 0 against the true one, and a partial match can only come from the true answer.
AWARD_NOUNS = ("Prize", "Medal", "Award", "Laurel", "Cup", "Crown", "Wreath", "Ribbon", "Star",
               "Quill", "Lantern", "Trophy", "Shield", "Circle", "Key", "Rose", "Compass",
               "Anchor", "Feather", "Torch", "Scroll", "Bell", "Harp", "Lyre", "Seal", "Banner",
               "Crest", "Chalice", "Plume", "Beacon", "Spire", "Arch", "Globe", "Orb", "Sceptre",
               "Ring", "Tablet", "Pen", "Garland", "Citation", "Honour", "Fellowship", "Mantle",
               "Emblem", "Pennant", "Sash", "Tower", "Gate")
# Nouns for the made-up alternative awards of unlearning; none is an AWARD_NOUN, so an
# alternative shares no word with any true answer.
ALTERNATIVE_AWARD_NOUNS = ("Diploma", "Grant", "Cross", "Order", "Palm", "Lamp", "Horn", "Stone")
# fmt: on
PROMPT_FORMAT = "Question: {question}\nAnswer:"


@dataclass(frozen=True)
class Author:
    name: str
    birthplace: str
    book: str
    award: str


@dataclass(frozen=True)
class QAPair:
    id: str
    question: str
    prompt: str
    answer: str
    split: str  # "forget" or "retain"
    author: str
    kind: str

    @property
    def target(self) -> str:
        """The completion the model is trained on: a leading space, the answer, a full stop."""
        return f" {self.answer}."


def _word(rng: random.Random, syllables: int) -> str:
    parts = [rng.choice(ONSETS) + rng.choice(VOWELS) for _ in range(syllables)]
    return ("".join(parts) + rng.choice(CODAS)).capitalize()


def _unique(rng: random.Random, used: set[str], make: Callable[[random.Random], str]) -> str:
    while True:
        value = make(rng)
        if value.lower() not in used:
            used.add(value.lower())
            return value


def make_authors(n_authors: int, *, seed: int) -> list[Author]:
    """`n_authors` fictitious authors; every name and answer word is used once only."""
    if not 2 <= n_authors <= len(AWARD_NOUNS):
        raise ValueError(f"n_authors must be in [2, {len(AWARD_NOUNS)}], got {n_authors}")
    rng = random.Random(seed)
    award_nouns = rng.sample(AWARD_NOUNS, n_authors)
    used = {noun.lower() for noun in AWARD_NOUNS}
    authors = []
    for noun in award_nouns:
        first = _unique(rng, used, lambda r: _word(r, 2))
        last = _unique(rng, used, lambda r: _word(r, r.choice((2, 3))))
        birthplace = _unique(rng, used, lambda r: _word(r, 3))
        book = " ".join(
            (_unique(rng, used, lambda r: _word(r, 2)), _unique(rng, used, lambda r: _word(r, 2)))
        )
        award = f"{_unique(rng, used, lambda r: _word(r, 2))} {noun}"
        authors.append(Author(f"{first} {last}", birthplace, book, award))
    return authors


def make_qa_pairs(authors: list[Author], *, n_forget_authors: int, seed: int) -> list[QAPair]:
    """Three questions per author; all questions about `n_forget_authors` authors form the
    forget set (as in TOFU, Maini et al. 2024, where whole authors are forgotten)."""
    if not 0 < n_forget_authors < len(authors):
        raise ValueError(
            f"n_forget_authors must be in [1, {len(authors) - 1}], got {n_forget_authors}"
        )
    rng = random.Random(seed + 1)
    forget = set(rng.sample(range(len(authors)), n_forget_authors))
    pairs = []
    for i, author in enumerate(authors):
        split = "forget" if i in forget else "retain"
        for kind, template in QUESTION_TEMPLATES.items():
            question = template.format(name=author.name)
            pairs.append(
                QAPair(
                    id=f"a{i:02d}-{kind}",
                    question=question,
                    prompt=PROMPT_FORMAT.format(question=question),
                    answer=getattr(author, kind),
                    split=split,
                    author=author.name,
                    kind=kind,
                )
            )
    return pairs


def make_knowledge_base(*, n_authors: int, n_forget_authors: int, seed: int) -> list[QAPair]:
    return make_qa_pairs(
        make_authors(n_authors, seed=seed), n_forget_authors=n_forget_authors, seed=seed
    )


def make_alternative_answers(pairs: list[QAPair], *, seed: int) -> dict[str, str]:
    """A made-up alternative answer of the same kind for every question (id -> answer), for
    alternative-answer unlearning: no alternative shares a word with any word of the knowledge
    base, and no two alternatives are equal."""
    rng = random.Random(seed + 2)
    used = {w.lower() for p in pairs for w in (*p.answer.split(), *p.author.split())}
    used |= {noun.lower() for noun in (*AWARD_NOUNS, *ALTERNATIVE_AWARD_NOUNS)}
    alternatives = {}
    for p in pairs:
        if p.kind == "birthplace":
            alternatives[p.id] = _unique(rng, used, lambda r: _word(r, 3))
        elif p.kind == "book":
            alternatives[p.id] = " ".join(
                (
                    _unique(rng, used, lambda r: _word(r, 2)),
                    _unique(rng, used, lambda r: _word(r, 2)),
                )
            )
        else:
            noun = rng.choice(ALTERNATIVE_AWARD_NOUNS)
            alternatives[p.id] = f"{_unique(rng, used, lambda r: _word(r, 2))} {noun}"
    return alternatives
