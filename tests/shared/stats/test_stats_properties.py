"""Property tests (hypothesis): order, monotonicity in alpha and valid ranges of every bound."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.stats import BoundsTable, bound_rows

score = st.one_of(
    st.sampled_from([0.0, 1.0]),
    st.floats(min_value=0.0, max_value=1.0, allow_nan=False, allow_infinity=False),
)
row = st.lists(score, min_size=1, max_size=40)
rows = st.lists(row, min_size=1, max_size=4)
alpha = st.floats(min_value=1e-4, max_value=0.5)
LEVELS = (0.0, 0.3, 0.5, 0.99, 1.0)
SLACK = 1e-12
PROPS = settings(max_examples=40, deadline=None, derandomize=True)  # same cases in CI


def bounds(r: list[list[float]], a: float, lam: float = 1.0) -> BoundsTable:
    return bound_rows(r, alpha=a, thresholds=LEVELS, quantiles=LEVELS, ed_lambda=lam)


@PROPS
@given(rows, alpha)
def test_lower_mean_upper(r: list[list[float]], a: float) -> None:
    t = bounds(r, a)
    assert (t.expectation_lower <= t.mean + SLACK).all()
    assert (t.mean <= t.expectation_upper + SLACK).all()
    assert (t.betting_lower <= t.mean).all() and (t.mean <= t.betting_upper).all()
    b = t.binary
    p_hat = t.binary_k[b] / t.n[b]
    assert (t.binary_lower[b] <= p_hat + SLACK).all() and (p_hat <= t.binary_upper[b] + SLACK).all()


@PROPS
@given(rows, alpha, st.floats(min_value=0.0, max_value=10.0))
def test_every_bound_in_its_range(r: list[list[float]], a: float, lam: float) -> None:
    t = bounds(r, a, lam)
    for v in (t.expectation_lower, t.expectation_upper, t.betting_lower, t.betting_upper,
              t.survival_upper, t.quantile_upper, t.mean):  # fmt: skip
        assert ((v >= 0.0) & (v <= 1.0)).all()
    assert ((t.std_upper >= 0.0) & (t.std_upper <= 0.5)).all()
    assert ((t.ed_upper >= t.mean - SLACK) & (t.ed_upper <= 1.0 + 0.5 * lam + SLACK)).all()
    b = t.binary
    assert ((t.binary_lower[b] >= 0) & (t.binary_upper[b] <= 1)).all()
    assert (t.n == [len(x) for x in r]).all()


@PROPS
@given(rows, alpha, st.floats(min_value=0.05, max_value=0.99))
def test_bounds_widen_as_alpha_shrinks(r: list[list[float]], a: float, shrink: float) -> None:
    wide, narrow = bounds(r, a * shrink), bounds(r, a)
    assert (wide.expectation_lower <= narrow.expectation_lower + SLACK).all()
    assert (wide.expectation_upper >= narrow.expectation_upper - SLACK).all()
    assert (wide.std_upper >= narrow.std_upper - SLACK).all()
    assert (wide.ed_upper >= narrow.ed_upper - SLACK).all()
    assert (wide.survival_upper >= narrow.survival_upper - SLACK).all()
    assert (wide.quantile_upper >= narrow.quantile_upper).all()
    b = wide.binary
    assert (wide.binary_lower[b] <= narrow.binary_lower[b] + SLACK).all()
    assert (wide.binary_upper[b] >= narrow.binary_upper[b] - SLACK).all()
    assert (wide.betting_lower <= narrow.betting_lower + 1e-6).all()
    assert (wide.betting_upper >= narrow.betting_upper - 1e-6).all()


@PROPS
@given(rows, alpha)
def test_ragged_rows_equal_rows_bounded_one_at_a_time(r: list[list[float]], a: float) -> None:
    together = bounds(r, a)
    for i, x in enumerate(r):
        alone = bounds([x], a)
        assert together.row(i) == alone.row(0)


def test_order_of_rows_is_kept_for_many_lengths() -> None:
    rng = np.random.default_rng(0)
    r = [rng.random(int(n)).tolist() for n in rng.integers(1, 30, size=50)]
    t = bounds(r, 0.05)
    np.testing.assert_allclose(t.mean, [np.mean(x) for x in r])
