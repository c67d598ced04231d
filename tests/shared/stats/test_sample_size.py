"""The planner's n. References: scipy.stats.beta.ppf for Clopper-Pearson's upper bound
(BetaInv(1 - alpha; c + 1, n - c)) at n and n - 1, and the closed form 1 - alpha^(1/n)."""

from __future__ import annotations

import math

import pytest
from scipy.stats import beta

from shared.errors import InvalidInput
from shared.stats.sample_size import certify_n, leak_at_k_level_to_tau, leak_at_k_n, mean_width_n


def _cp_upper(c: int, n: int, alpha: float) -> float:
    return 1.0 if c >= n else float(beta.ppf(1 - alpha, c + 1, n - c))


def test_459_draws_certify_one_percent_at_alpha_one_percent() -> None:
    assert certify_n(0.01, alpha=0.01) == 459
    assert 1 - 0.01 ** (1 / 459) < 0.01 <= 1 - 0.01 ** (1 / 458)


@pytest.mark.parametrize(
    ("tau", "alpha", "leaks"), [(0.01, 0.01, 1), (0.05, 0.05, 3), (0.001, 0.01, 0)]
)
def test_certify_n_is_the_smallest_n(tau: float, alpha: float, leaks: int) -> None:
    n = certify_n(tau, alpha=alpha, leaks=leaks)
    assert _cp_upper(leaks, n, alpha) < tau <= _cp_upper(leaks, n - 1, alpha)


def test_leak_at_k_target_reduces_to_a_p_target() -> None:
    tau = leak_at_k_level_to_tau(0.1, 10)
    assert 1 - (1 - tau) ** 10 == pytest.approx(0.1)
    assert leak_at_k_n(0.1, 10, alpha=0.01) == certify_n(tau, alpha=0.01)


def test_mean_width_n_matches_the_closed_form() -> None:
    for width, alpha in ((0.1, 0.01), (0.05, 0.05), (0.2, 0.001)):
        n = mean_width_n(width, alpha=alpha)
        assert n == math.ceil(2 * math.log(2 / alpha) / width**2)


def test_bad_targets_name_the_field() -> None:
    with pytest.raises(InvalidInput) as err:
        certify_n(0.0, alpha=0.01)
    assert err.value.param == "tau"
    with pytest.raises(InvalidInput) as err:
        leak_at_k_n(0.1, 0, alpha=0.01)
    assert err.value.param == "k"


def test_targets_beyond_the_planning_limit_are_clear_errors() -> None:
    for call in (
        lambda: certify_n(5e-324, alpha=0.01),
        lambda: mean_width_n(5e-324, alpha=0.01),
        lambda: certify_n(1e-9, alpha=0.01, leaks=1_000_000),
    ):
        with pytest.raises(InvalidInput) as err:
            call()
        assert err.value.param == "target" and "draws per prompt" in err.value.message
