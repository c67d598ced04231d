"""The one error shape of every 4xx/5xx body and of a failed job's record."""

from __future__ import annotations

from pydantic import BaseModel, Field


class ErrorInfo(BaseModel):
    """The one error shape: in every 4xx/5xx body and in a failed job's record."""

    code: str = Field(description="Machine-readable error code.")
    message: str = Field(description="What went wrong, naming the field and allowed values.")
    param: str | None = Field(None, description="The offending field, as a dotted path.")


class ErrorResponse(BaseModel):
    """The body of every 4xx/5xx response."""

    error: ErrorInfo
