"""alpha must be a real number in (0, 0.5], never a string or a bool that happens to convert."""

from __future__ import annotations

import numpy as np
import pytest

from shared.errors import InvalidInput
from shared.stats import betting_sequence, bound_rows, clopper_pearson


@pytest.mark.parametrize("alpha", ["0.05", True, 0.6, 1.0, 0.0, float("nan"), None])
def test_bad_alpha_is_refused_everywhere(alpha: object) -> None:
    for call in (
        lambda: bound_rows([[0.1, 0.2]], alpha=alpha),  # type: ignore[arg-type]
        lambda: clopper_pearson(np.array([1]), np.array([5]), alpha=alpha),  # type: ignore[arg-type]
        lambda: betting_sequence([0.1, 0.2], alpha=alpha),  # type: ignore[arg-type]
    ):
        with pytest.raises(InvalidInput) as info:
            call()
        assert info.value.param == "alpha"
        assert "(0, 0.5]" in info.value.message


def test_alpha_one_half_and_numpy_floats_are_fine() -> None:
    t = bound_rows([[0.0, 1.0, 1.0]], alpha=np.float64(0.5))
    assert t.alpha == 0.5
    # Above 1/2 the one-sided Clopper-Pearson lower bound would exceed the upper one:
    # at alpha = 0.5 they meet (both are medians), below they are ordered.
    cp = clopper_pearson(np.array([3]), np.array([10]), alpha=0.5)
    assert cp.lower[0] <= cp.upper[0]
