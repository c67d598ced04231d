"""A job's webhook: the callback URL's shape (the pattern the OpenAPI document states and the
check that words its errors) and the delivery state shown in the job view.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import BaseModel, BeforeValidator, Field

# A callback URL, as the OpenAPI document states it: http(s), an ASCII host (DNS name, IPv4 or
# a bracketed IPv6 address), an optional port in 1..65535, no credentials, printable ASCII after.
# Every URL it matches passes ``check_callback_url_shape`` (which words the errors), and the
# server enforces the pattern itself, so schema and server accept exactly the same strings.
_H16 = "[0-9A-Fa-f]{1,4}"
_IPV6 = "|".join(
    [
        f"(?:{_H16}:){{7}}{_H16}",
        f"(?:{_H16}:){{1,7}}:",
        f"(?:{_H16}:){{1,6}}:{_H16}",
        *(f"(?:{_H16}:){{1,{6 - i}}}(?::{_H16}){{1,{i + 1}}}" for i in range(1, 6)),
        f":(?:(?::{_H16}){{1,7}}|:)",
    ]
)
_LABEL = "[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_PORT = "(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3})"
CALLBACK_URL_PATTERN = (
    rf"^https?://(?:{_LABEL}(?:\.{_LABEL})*\.?|\[(?:{_IPV6})\])(?::{_PORT})?(?:[/?#][!-~]*)?$"
)


def _callback_shape(value: Any) -> Any:
    # Before the pattern, so that the usual mistakes get a sentence rather than the pattern.
    if isinstance(value, str):
        check_callback_url_shape(value)
    return value


# The validator wraps the constrained str, so that it runs first and the pattern is in the schema.
CallbackUrl = Annotated[
    str, Field(max_length=2048, pattern=CALLBACK_URL_PATTERN), BeforeValidator(_callback_shape)
]


def check_callback_url_shape(url: str) -> None:
    """Scheme and host of a callback URL (the address checks need DNS: shared/callbacks.py)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"not a valid URL: {exc}") from exc
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"scheme must be http or https, got {parts.scheme or 'none'!r}")
    if not parts.hostname:
        raise ValueError("the URL has no host")
    if parts.username is not None or parts.password is not None:
        raise ValueError("credentials in the URL are not allowed")
    if port == 0:
        raise ValueError("port 0 is not allowed")


class CallbackDelivery(StrEnum):
    """Where a job's webhook delivery stands."""

    none = "none"  # the job has not ended yet
    pending = "pending"
    delivered = "delivered"
    failed = "failed"


class CallbackState(BaseModel):
    """Where the webhook of a job with a ``callback_url`` stands."""

    url: str
    state: CallbackDelivery = Field(
        description="none until the job ends; pending while attempts go on; delivered (a 2xx "
        "answer); failed once the retry window has passed or the address was refused."
    )
    attempts: int = Field(0, description="POSTs tried so far.")
    last_error: str | None = Field(None, description="Why the last attempt failed.")
    delivered_at: float | None = Field(None, description="Unix time (s) of the 2xx answer.")
