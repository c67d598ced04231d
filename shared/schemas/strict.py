"""The base of every request model: unknown fields and silent type conversions are errors,
except an integral JSON number for an int field.
"""

from __future__ import annotations

from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator


def _integral(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _takes_int(annotation: Any) -> bool:
    """Whether a field's type is int, ``int | None`` or a list of ints (Annotated or not)."""
    if annotation is int:
        return True
    if get_origin(annotation) is Annotated:
        return _takes_int(get_args(annotation)[0])
    if get_origin(annotation) in (list, Union, UnionType):
        return any(_takes_int(arg) for arg in get_args(annotation))
    return False


class _Strict(BaseModel):
    """Unknown fields are an error, not silently dropped: a typo must not change a job. Types are
    strict too: ``"n": "10"`` or ``"n": true`` is a 422, not a silent conversion.

    One exception, because JSON has a single number type: a number with no fractional part
    (``53.0``) is the integer it equals, as JSON Schema's ``integer`` (what OpenAPI states for
    every int field) says. ``53.5`` stays an error; float fields accept ints anyway."""

    model_config = ConfigDict(extra="forbid", strict=True)

    @field_validator("*", mode="before")
    @classmethod
    def _integral_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        # Integer fields and lists of them (k); nested models apply this themselves. Float
        # fields keep the value as given, so that an error echoes it as sent.
        field = cls.model_fields.get(info.field_name or "")
        if field is None or not _takes_int(field.annotation):
            return value
        if isinstance(value, list):
            return [_integral(v) for v in value]
        return _integral(value)
