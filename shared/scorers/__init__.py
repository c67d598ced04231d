"""Scorers: the registry (built-ins plus ``probeval.scorers`` entry points) and their options."""

from __future__ import annotations

from pydantic import BaseModel

from shared.scorers.builtin import BUILTIN_SCORERS
from shared.scorers.judge import JudgeOptions, template_fields
from shared.scorers.registry import ENTRY_POINT_GROUP, ScoreFn, ScorerDefinition, discover

__all__ = [
    "ENTRY_POINT_GROUP",
    "SCORERS",
    "ScoreFn",
    "ScorerDefinition",
    "needs_reference",
    "scorer_definition",
]

SCORERS: dict[str, ScorerDefinition] = discover(BUILTIN_SCORERS)
"""Every scorer of this process, by name; fixed when the process imports ``shared``."""


def scorer_definition(name: str) -> ScorerDefinition:
    """The registered scorer called ``name``; KeyError listing the registered names."""
    try:
        return SCORERS[name]
    except KeyError:
        raise KeyError(
            f"no scorer {name!r} in this process; registered: {', '.join(sorted(SCORERS))}"
        ) from None


def needs_reference(scorer: BaseModel) -> bool:
    """Whether every prompt of a job with this ``scorer`` must carry a ``reference``."""
    if isinstance(scorer, JudgeOptions):
        return "reference" in template_fields(scorer.template)
    return scorer_definition(str(getattr(scorer, "name", ""))).needs_reference
