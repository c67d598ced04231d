"""The judge scorer's pure rules and the scorer registry's request schema."""

from __future__ import annotations

import math

import pytest
from pydantic import ValidationError

from shared.errors import InvalidInput
from shared.schemas import JobCreate, PromptSpec, parse_scorer
from shared.scorers import SCORERS
from shared.scorers.judge import (
    JudgeOptions,
    label_first_tokens,
    label_score,
    render_template,
    template_fields,
)

JUDGE = {
    "name": "judge",
    "judge_model": "j",
    "template": "Q: {prompt}\nA: {response}\nRef: {reference}\n{{literal}}",
    "labels": {"yes": 1.0, "no": 0.0},
}


def test_template_fields_and_plain_substitution() -> None:
    assert template_fields(JUDGE["template"]) == {"prompt", "response", "reference"}  # type: ignore[arg-type]
    out = render_template(
        str(JUDGE["template"]), {"prompt": "{response}", "response": "r", "reference": "x"}
    )
    # Values are inserted verbatim (a value's own braces are not placeholders) and {{ }} are
    # literal braces.
    assert out == "Q: {response}\nA: r\nRef: x\n{literal}"


@pytest.mark.parametrize(
    "template",
    ["{response} {answer}", "{response.__class__}", "{response!r}", "{response:>10}", "{0}", "{}"],
)
def test_template_rejects_anything_but_the_three_names(template: str) -> None:
    with pytest.raises(ValueError, match="allowed: \\{prompt\\}, \\{response\\}, \\{reference\\}"):
        template_fields(template)


def test_template_needs_response_and_balanced_braces() -> None:
    with pytest.raises(ValueError, match="must contain \\{response\\}"):
        template_fields("{prompt} only")
    with pytest.raises(ValueError, match="malformed template"):
        template_fields("{response} {")


def test_label_score_is_the_normalised_expected_value() -> None:
    # P(yes) = 0.3, P(no) = 0.1 (the rest of the vocabulary holds 0.6): score 0.3 / 0.4 = 0.75.
    lp = {"yes": math.log(0.3), "no": math.log(0.1)}
    assert label_score(lp, {"yes": 1.0, "no": 0.0}) == pytest.approx(0.75, abs=1e-12)
    # Three labels: (1 * 0.2 + 0.5 * 0.2 + 0 * 0.6) / 1.0 = 0.3.
    lp3 = {"a": math.log(0.2), "b": math.log(0.2), "c": math.log(0.6)}
    assert label_score(lp3, {"a": 1.0, "b": 0.5, "c": 0.0}) == pytest.approx(0.3, abs=1e-12)
    # Far below float range when exponentiated directly: the shift keeps it exact.
    assert label_score({"yes": -2000.0, "no": -2000.0 - math.log(3)}, {"yes": 1, "no": 0}) == (
        pytest.approx(0.75, abs=1e-12)
    )


def test_labels_need_distinct_first_tokens() -> None:
    def encode(text: str) -> list[int]:
        return [ord(c) for c in text]

    assert label_first_tokens({"yes": 1, "no": 0}, encode) == {"yes": ord("y"), "no": ord("n")}
    with pytest.raises(InvalidInput) as err:
        label_first_tokens({"yes": 1, "yeah": 0}, encode)
    assert err.value.param == "scorer.labels"
    assert "'yes' and 'yeah'" in err.value.message


def test_judge_options_validate_labels_and_template() -> None:
    assert isinstance(parse_scorer(JUDGE), JudgeOptions)
    for bad in ({"yes": 1.5, "no": 0}, {"yes": 1.0}, {"": 1.0, "no": 0.0}):
        with pytest.raises(ValidationError, match="labels"):
            parse_scorer({**JUDGE, "labels": bad})
    with pytest.raises(ValidationError, match="template"):
        parse_scorer({**JUDGE, "template": "{question} {response}"})


def test_prompt_spec_takes_exactly_one_of_prompt_and_messages() -> None:
    chat = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
    assert PromptSpec.model_validate({"id": "a", "messages": chat}).messages is not None
    for body in ({"id": "a"}, {"id": "a", "prompt": "x", "messages": chat}):
        with pytest.raises(ValidationError, match="exactly one of 'prompt'"):
            PromptSpec.model_validate(body)
    with pytest.raises(ValidationError, match="messages"):
        PromptSpec.model_validate({"id": "a", "messages": []})
    with pytest.raises(ValidationError, match="role"):
        PromptSpec.model_validate({"id": "a", "messages": [{"role": "robot", "content": "x"}]})


def test_job_schema_lists_exactly_the_registered_scorers() -> None:
    schema = JobCreate.model_json_schema()
    scorer = schema["properties"]["scorer"]
    names = set(scorer["discriminator"]["mapping"])
    assert names == set(SCORERS)
    assert {"rouge_l_recall", "rouge_l_f", "exact_match", "contains", "regex", "judge"} <= names
    judge = schema["$defs"]["JudgeScorer"]
    assert set(judge["required"]) == {"name", "judge_model", "template", "labels"}
    prompt = schema["$defs"]["PromptSpec"]
    assert [branch["required"] for branch in prompt["oneOf"]] == [["prompt"], ["messages"]]
    assert (
        JobCreate.model_validate(
            {"model": "m", "prompts": [{"id": "a", "prompt": "x"}]}
        ).scorer.name
        == "rouge_l_recall"
    )
