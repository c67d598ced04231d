"""The scorer registry: every scorer a job can name, built-ins and plug-ins alike.

A scorer is a ``ScorerDefinition``: its name, a pydantic model of its options (the fields of the
job's ``scorer`` object besides ``name``) and the dotted path of its factory. The request schema
(``shared.schemas.ScorerSpec``) is built from this registry when ``shared.schemas`` is imported,
so the HTTP schema, OpenAPI and the scorer workers always agree on the names and options.

Third-party scorers are Python packages that expose a ``ScorerDefinition`` under the entry-point
group ``probeval.scorers`` (docs/scorers.md). Only the definition (names and option models) is
imported in the gateway; the factory, named by a dotted path, is imported in scorer workers only,
like RQ tasks. Nothing from a request is ever executed as code: a request selects a registered
name and fills in validated options.
"""

from __future__ import annotations

import importlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata

from pydantic import BaseModel

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "probeval.scorers"
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")

ScoreFn = Callable[[str, str | None], float]
"""A per-draw scorer: (draw text, the prompt's reference or None) -> score in [0, 1]."""


@dataclass(frozen=True)
class ScorerDefinition:
    """One scorer.

    ``options`` is a pydantic model holding the scorer's options (it should forbid extra fields);
    it becomes the scorer's variant of the request schema, with ``name`` added. ``factory`` is
    ``"module:function"``; the function takes the validated options and returns a ``ScoreFn``.
    ``needs_reference``: every prompt must carry a ``reference``. ``judged``: the draws are
    scored by a judge model's samplers, not by a factory (the built-in ``judge`` only).
    """

    name: str
    options: type[BaseModel]
    factory: str | None
    description: str
    needs_reference: bool = False
    judged: bool = False

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ValueError(f"scorer name {self.name!r} must match {_NAME.pattern}")
        if "name" in self.options.model_fields:
            raise ValueError(f"scorer {self.name!r}: its options must not define 'name'")
        if (self.factory is None) != self.judged:
            raise ValueError(f"scorer {self.name!r}: give a factory unless it is judged")


def load_factory(definition: ScorerDefinition) -> Callable[[BaseModel], ScoreFn]:
    """Import the definition's factory (scorer workers only)."""
    if definition.factory is None:
        raise ValueError(f"scorer {definition.name!r} has no factory: its draws are judged")
    module, _, attribute = definition.factory.partition(":")
    factory: Callable[[BaseModel], ScoreFn] = getattr(importlib.import_module(module), attribute)
    return factory


def discover(builtins: list[ScorerDefinition]) -> dict[str, ScorerDefinition]:
    """The built-ins plus every installed ``probeval.scorers`` entry point, by name.

    A plug-in that fails to load, is not a ``ScorerDefinition`` or reuses a taken name is left
    out with a warning: a broken package must not take the gateway down, and must never replace
    a built-in.
    """
    found = {d.name: d for d in builtins}
    for entry in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        try:
            definition = entry.load()
        except Exception as exc:
            log.warning("scorer plug-in %s (%s) failed to load: %s", entry.name, entry.value, exc)
            continue
        if not isinstance(definition, ScorerDefinition):
            log.warning("scorer plug-in %s is not a ScorerDefinition; ignored", entry.value)
            continue
        if definition.name in found:
            log.warning(
                "scorer plug-in %s reuses the name %r; ignored", entry.value, definition.name
            )
            continue
        found[definition.name] = definition
    return found
