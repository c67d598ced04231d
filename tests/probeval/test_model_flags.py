"""CLI flags come from the pydantic model: every option, its default and its limits."""

from __future__ import annotations

import argparse

import pytest

from probeval.cli import UsageError
from probeval.model_flags import add_model_flags, flag_name, model_from_flags
from shared.schemas import BoundsOptions


def parse(*argv: str) -> BoundsOptions:
    parser = argparse.ArgumentParser()
    add_model_flags(parser, BoundsOptions)
    return model_from_flags(BoundsOptions, parser.parse_args(list(argv)), "prog")


def test_every_option_is_a_flag_with_the_model_default() -> None:
    names = [flag_name(f, i) for f, i in BoundsOptions.model_fields.items()]
    assert names == ["--alpha", "--threshold", "--quantile", "--ed-lambda", "--k", "--leak-at"]
    assert parse() == BoundsOptions()
    assert parse().k == [1, 10, 100]  # a repeatable flag never given keeps the model default
    assert parse("--k", "5", "--leak-at", "0.5").k == [5]
    got = parse("--threshold", "0.5", "--threshold", "0.25", "--ed-lambda", "3")
    assert got == BoundsOptions(thresholds=[0.5, 0.25], ed_lambda=3.0)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--alpha", "1"], "prog: --alpha must be a number in (0, 0.5], got 1.0"),
        (["--alpha", "0.6"], "prog: --alpha must be a number in (0, 0.5], got 0.6"),
        (["--threshold", "-0.5"], "prog: --threshold must be a number in [0, 1], got -0.5"),
        (["--quantile", "inf"], "prog: --quantile must be a number in [0, 1], got inf"),
        (["--ed-lambda", "2e6"], "prog: --ed-lambda must be a number in [0, 1e+06], got 2000000.0"),
        (["--quantile", "0.5"] * 65, "prog: at most 64 values of --quantile, got 65"),
        (["--k", "0"], "prog: --k must be an integer in [1, 100000], got 0"),
        (["--leak-at", "1.5"], "prog: --leak-at must be a number in [0, 1], got 1.5"),
    ],
)
def test_a_rejected_flag_is_one_line_with_the_models_limit(argv: list[str], message: str) -> None:
    with pytest.raises(UsageError) as info:
        parse(*argv)
    assert str(info.value) == message
