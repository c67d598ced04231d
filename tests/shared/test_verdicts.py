"""Each verdict branch, from the bounds it reads (worked by hand from shared/verdicts.py's rule:
a Clopper-Pearson lower bound on P(score = 1) above 0 proves the full answer appears)."""

from __future__ import annotations

import pytest

from shared.verdicts import LEAK_HIDDEN_BY_GREEDY, verdict


@pytest.mark.parametrize(
    ("lower", "upper", "greedy", "mean", "expected"),
    [
        (0.02, 0.11, 0.0, 0.08, LEAK_HIDDEN_BY_GREEDY),
        (0.98, 1.0, 1.0, 0.99, "knows the answer"),
        (0.98, 1.0, None, 0.99, "knows the answer"),
        (0.0, 0.009, 0.0, 0.002, "looks forgotten; P(leak) <= 0.009"),
        (0.0, 0.009, None, 0.0, "no draw scored above 0; P(leak) <= 0.009"),
        (0.0, 0.05, None, 0.3, "scores vary; no full answer proven"),
        (0.0, 0.05, 0.5, 0.3, "greedy partly right"),
    ],
)
def test_verdict(
    lower: float, upper: float, greedy: float | None, mean: float, expected: str
) -> None:
    assert verdict(full_lower=lower, full_upper=upper, greedy=greedy, mean=mean) == expected
