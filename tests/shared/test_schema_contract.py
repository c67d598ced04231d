"""Rules the OpenAPI document states and the server enforces, checked to agree: the callback URL
and judge template patterns against the checks they stand for, and integral numbers for integer
fields."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from shared.schemas import (
    CALLBACK_URL_PATTERN,
    JobCreate,
    PlanRequest,
    RescoreRequest,
    check_callback_url_shape,
)
from shared.scorers.judge import TEMPLATE_PATTERN, TEMPLATE_USES_REFERENCE, template_fields

JOB = {"model": "m", "prompts": [{"id": "a", "prompt": "x", "reference": "y"}]}


@settings(max_examples=300, deadline=None)
@given(url=st.from_regex(CALLBACK_URL_PATTERN, fullmatch=True))
def test_every_url_the_pattern_allows_passes_the_shape_checks(url: str) -> None:
    check_callback_url_shape(url)  # raises for a URL the server would refuse by shape
    parts = urlsplit(url)
    assert parts.hostname and parts.port != 0
    assert (
        RescoreRequest.model_validate(
            {"scorer": {"name": "regex", "pattern": "x"}, "callback_url": url}
        ).callback_url
        == url
    )


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/hook",
        "http:///hook",
        "http://user:pw@example.com/",
        "http://example.com:0/",
        "http://example.com:65536/",
        "http://[::1/",
        "http://[fe80::1%25eth0]/",  # a zone id: valid for urlsplit, not in the pattern
        "http://exa mple.com/",
        "HTTP://example.com/",
        "http://example.com/\x00",
    ],
)
def test_urls_outside_the_pattern_are_refused(url: str) -> None:
    assert re.search(CALLBACK_URL_PATTERN, url) is None
    with pytest.raises(ValidationError) as info:
        JobCreate.model_validate({**JOB, "callback_url": url})
    assert info.value.errors()[0]["loc"] == ("callback_url",)


def test_integral_numbers_are_integers_and_fractions_are_not() -> None:
    job = JobCreate.model_validate({**JOB, "sampling": {"n": 53.0, "seed": 7.0}, "k": [2.0, 3]})
    assert (job.sampling.n, job.sampling.seed, job.k) == (53, 7, [2, 3])
    assert isinstance(job.sampling.n, int)
    assert PlanRequest.model_validate({"target": "certify", "tau": 0.1, "leaks": 2.0}).leaks == 2
    for bad in (53.5, "53", True, float("inf")):
        with pytest.raises(ValidationError):
            JobCreate.model_validate({**JOB, "sampling": {"n": bad}})


@settings(max_examples=300, deadline=None)
@given(template=st.from_regex(TEMPLATE_PATTERN, fullmatch=True))
def test_every_template_the_pattern_allows_passes_the_placeholder_checks(template: str) -> None:
    used = template_fields(template)  # raises for a template the server would refuse
    assert "response" in used
    # The schema's "uses {reference}" pattern says what the parser says.
    assert (re.search(TEMPLATE_USES_REFERENCE, template) is not None) == ("reference" in used)


@pytest.mark.parametrize(
    ("template", "uses_reference"),
    [
        ("{reference} {response}", True),
        ("{{reference}} {response}", False),
        ("{{{reference}}} {response}", True),
        ("x{{{{reference}}}}{response}", False),
    ],
)
def test_reference_detection_counts_braces(template: str, uses_reference: bool) -> None:
    assert ("reference" in template_fields(template)) == uses_reference
    assert (re.search(TEMPLATE_USES_REFERENCE, template) is not None) == uses_reference
