"""probeval's exceptions: one base, a few kinds. The gateway maps each to one HTTP status."""

from __future__ import annotations


class ProbevalError(Exception):
    """Base error; ``code`` is the machine-readable error code, ``param`` the offending field."""

    code = "internal_error"

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


class InvalidInput(ProbevalError):
    """The caller's input is malformed or outside the allowed values."""

    code = "invalid_input"


class NotFound(ProbevalError):
    """The named job, model or prompt does not exist (for this caller)."""

    code = "not_found"


class Conflict(ProbevalError):
    """The request is valid but not in the object's current state (e.g. results before success)."""

    code = "conflict"


class LimitExceeded(ProbevalError):
    """The request is over a configured limit."""

    code = "limit_exceeded"


class Unauthorized(ProbevalError):
    """No valid API key was given."""

    code = "unauthorized"


class TooManyRequests(ProbevalError):
    """The caller is over a rate or concurrency limit; ``retry_after_s`` says when to retry."""

    code = "too_many_requests"

    def __init__(self, message: str, *, param: str | None = None, retry_after_s: int = 10) -> None:
        super().__init__(message, param=param)
        self.retry_after_s = retry_after_s
