"""Command-line flags derived from a pydantic model, so the CLI never restates a limit.

Each field of the model becomes ``--field-name`` (a list field becomes a repeatable flag in the
singular: ``thresholds`` -> ``--threshold``) with the field's default and description as its
help; the parsed values are validated by the model itself, and a rejection becomes one
``UsageError`` line naming the flag, the allowed values (read from the field's constraints)
and the value given.
"""

from __future__ import annotations

import argparse
import types
import typing
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from probeval.cli import UsageError

__all__ = ["add_model_flags", "flag_name", "model_from_flags"]

M = TypeVar("M", bound=BaseModel)


def flag_name(field: str, info: FieldInfo) -> str:
    """``ed_lambda`` -> ``--ed-lambda``; a list field is named in the singular."""
    name = field[:-1] if _is_list(info) and field.endswith("s") else field
    return "--" + name.replace("_", "-")


def _is_list(info: FieldInfo) -> bool:
    return typing.get_origin(info.annotation) is list


def _scalar_type(info: FieldInfo) -> tuple[type, list[Any]]:
    """The Python type of one value of the field and the constraints on one value."""
    annotation: Any = info.annotation
    metadata = list(info.metadata)
    if typing.get_origin(annotation) is list:
        (annotation,) = typing.get_args(annotation)
        metadata = []
    if typing.get_origin(annotation) is typing.Annotated:
        base, *extra = typing.get_args(annotation)
        for item in extra:
            metadata.extend(item.metadata if isinstance(item, FieldInfo) else [item])
        annotation = base
    if isinstance(annotation, types.UnionType):
        # ``X | None`` (default None): the flag takes an X; leaving it out means None.
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            annotation = args[0]
    if typing.get_origin(annotation) is typing.Literal:
        return str, [_Choices(tuple(str(v) for v in typing.get_args(annotation)))]
    if isinstance(annotation, types.UnionType) or annotation not in (float, int, str):
        raise TypeError(f"no command-line form for a field of type {annotation!r}")
    return annotation, metadata


@dataclass(frozen=True)
class _Choices:
    """The values a Literal field allows (a constraint like pydantic's Ge/Le)."""

    values: tuple[str, ...]


def _interval(metadata: Iterable[Any]) -> str | None:
    """``(0, 1)`` / ``[0, 1e6]`` from Gt/Ge/Lt/Le constraints; None when unbounded."""
    # pydantic keeps each constraint as an annotated_types object with one attribute.
    low, high = "(-inf", "inf)"
    bounded = False
    for m in metadata:
        if getattr(m, "gt", None) is not None:
            low, bounded = f"({m.gt:g}", True
        elif getattr(m, "ge", None) is not None:
            low, bounded = f"[{m.ge:g}", True
        elif getattr(m, "lt", None) is not None:
            high, bounded = f"{m.lt:g})", True
        elif getattr(m, "le", None) is not None:
            high, bounded = f"{m.le:g}]", True
    return f"{low}, {high}" if bounded else None


def _max_length(info: FieldInfo) -> int | None:
    for m in info.metadata:
        if getattr(m, "max_length", None) is not None:
            return int(m.max_length)
    return None


def _allowed(field: str, info: FieldInfo) -> str:
    kind, metadata = _scalar_type(info)
    for m in metadata:
        if isinstance(m, _Choices):
            return f"one of {', '.join(m.values)}"
    noun = {float: "a number", int: "an integer", str: "a string"}[kind]
    interval = _interval(metadata)
    return f"{noun} in {interval}" if interval else noun


def add_model_flags(
    parser: argparse.ArgumentParser, model: type[BaseModel], *, exclude: Iterable[str] = ()
) -> None:
    """Add one flag per field of ``model`` but those in ``exclude`` (see the module docstring)."""
    skip = set(exclude)
    for field, info in model.model_fields.items():
        if field in skip:
            continue
        kind, _ = _scalar_type(info)
        help_text = info.description or field
        if _is_list(info):
            parser.add_argument(
                flag_name(field, info),
                dest=field,
                type=kind,
                action="append",
                default=[],
                metavar=field[0].upper(),
                help=f"{help_text} Repeatable."
                + (
                    f" Default {' '.join(map(str, default))}."
                    if (default := info.get_default(call_default_factory=True))
                    else ""
                ),
            )
        elif info.is_required():
            parser.add_argument(
                flag_name(field, info),
                dest=field,
                type=kind,
                required=True,
                metavar=field[0].upper(),
                help=f"{help_text} Required.",
            )
        else:
            default = info.get_default(call_default_factory=True)
            parser.add_argument(
                flag_name(field, info),
                dest=field,
                type=kind,
                default=default,
                metavar=field[0].upper(),
                help=f"{help_text} Default {default}.",
            )


def model_from_flags(model: type[M], args: argparse.Namespace, prog: str, **fields: Any) -> M:
    """Validate the parsed flags (and ``fields``, given directly) with ``model``; a rejection
    is one ``UsageError`` line."""
    # A repeatable flag never given is left to the model's default (``--k`` defaults to
    # 1, 10 and 100, not to no values).
    values = {
        field: getattr(args, field)
        for field, info in model.model_fields.items()
        if field not in fields
        and hasattr(args, field)
        and not (_is_list(info) and getattr(args, field) == [])
        and getattr(args, field) is not None
    }
    values.update(fields)
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = str(error["loc"][0])
        info = model.model_fields[field]
        flag = flag_name(field, info)
        if error["type"] == "too_long":
            raise UsageError(
                f"{prog}: at most {_max_length(info)} values of {flag}, got {len(values[field])}"
            ) from None
        raise UsageError(
            f"{prog}: {flag} must be {_allowed(field, info)}, got {error.get('input')!r}"
        ) from None
