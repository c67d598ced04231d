"""The demo's saving line: draws used adaptive vs fixed, and how the decisions compare."""

from __future__ import annotations

import argparse
from typing import Any

from probeval.commands.demo import adaptive_body, fixed_decision, saving_line


def prompt(n: int, lower: float, upper: float, decision: str, n_used: int) -> tuple[Any, Any]:
    fixed = {"n": n, "full_score": {"k": 0, "lower": lower, "upper": upper}}
    adaptive = {"sequential": {"decision": decision, "n_used": n_used}}
    return fixed, adaptive


def test_saving_line_counts_draws_and_decisions() -> None:
    pairs = [
        prompt(512, 0.05, 0.2, "above", 64),  # same
        prompt(512, 0.0, 0.009, "below", 480),  # same
        prompt(512, 0.0, 0.03, "undecided", 512),  # same (both undecided)
        prompt(512, 0.02, 0.1, "undecided", 512),  # fixed decided, adaptive left it open
    ]
    fixed = {
        "forget": {"prompts": [f for f, _ in pairs[:2]]},
        "retain": {"prompts": [f for f, _ in pairs[2:]]},
    }
    adaptive = {
        "forget": {"prompts": [a for _, a in pairs[:2]]},
        "retain": {"prompts": [a for _, a in pairs[2:]]},
    }
    line = saving_line(fixed, adaptive, argparse.Namespace(n=512))
    assert line == (
        "Adaptive: 1568 draws instead of 2048 (1.3x fewer) to decide whether P(answer) > 0.01; "
        "same decision as the 512-draw run for 3 of 4 questions, opposite for 0, left undecided "
        "for 1."
    )
    assert [fixed_decision(f["full_score"]) for f, _ in pairs] == [
        "above",
        "below",
        "undecided",
        "above",
    ]


def test_adaptive_body_is_a_valid_job() -> None:
    from shared.schemas import JobCreate

    args = argparse.Namespace(n=512, alpha=0.01, max_tokens=24)
    body = adaptive_body("m", [{"id": "q", "prompt": "p", "reference": "r"}], args)
    spec = JobCreate.model_validate(body)
    assert spec.stopping is not None and spec.sampling.n == spec.stopping.max_n == 512
