"""A job's ``scorer``: a discriminated union on ``name`` built from the scorer registry
(shared.scorers) when this module is imported.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal, Union, cast

from pydantic import BaseModel, Field, TypeAdapter, create_model

from shared.scorers import SCORERS, ScorerDefinition


def _scorer_variant(definition: ScorerDefinition) -> type[BaseModel]:
    """The request schema of one registered scorer: its options plus ``name``."""
    title = "".join(part.capitalize() for part in definition.name.split("_")) + "Scorer"
    variant: type[BaseModel] = create_model(
        title,
        __base__=definition.options,
        __doc__=definition.description,
        name=cast(Any, (Literal[definition.name], Field(description="The scorer's name."))),
    )
    return variant


SCORER_VARIANTS: dict[str, type[BaseModel]] = {
    name: _scorer_variant(d) for name, d in sorted(SCORERS.items())
}
if TYPE_CHECKING:

    class ScorerSpec(BaseModel):
        """What type checkers see: every variant has a ``name``; narrow with isinstance on
        the options class (e.g. ``JudgeOptions``)."""

        name: str

else:
    # A discriminated union on ``name`` built from the registry when this module is imported:
    # OpenAPI lists exactly the registered scorers and their options, and an unknown name is a
    # 422 that lists the registered ones.
    ScorerSpec = Annotated[
        Union[tuple(SCORER_VARIANTS.values())],  # noqa: UP007
        Field(discriminator="name", description="How each draw is scored into [0, 1]."),
    ]


def default_scorer() -> ScorerSpec:
    """The scorer a job gets when it names none: ROUGE-L recall against its references."""
    return cast("ScorerSpec", SCORER_VARIANTS["rouge_l_recall"](name="rouge_l_recall"))


def parse_scorer(data: dict[str, object]) -> ScorerSpec:
    """A ``scorer`` object validated against the registry (as in a job)."""
    return TypeAdapter(ScorerSpec).validate_python(data)
