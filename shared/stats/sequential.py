"""Incremental confidence sequences: a small state per stream, updated one round of draws at a time.

Adaptive sampling stores one of these states per prompt (in Redis) and folds in each new round of
scores, so an update costs O(round) for the Beta mixture and O(round x grid) for betting, never
O(draws so far); memory is O(1) and O(grid). Both report the running intersection of the
sequence over every t seen (Ville's inequality makes the intersection valid at once).

* ``MixtureState``: Robbins' mixture martingale for p = P(event) from 0/1 outcomes,
  ``M_t(p) = m_t / (p^S_t (1 - p)^(t - S_t))`` with ``m_t`` the marginal likelihood of the
  outcomes under a prior on p (``MixturePrior``); ``C_t = {p : M_t(p) < 1/alpha}``, two-sided at
  1 - alpha over all t at once for ANY fixed prior (M_t(p) is a mean-1 martingale when p is the
  true rate; Ville's inequality). The default prior is Beta(1/2, 1/2); a threshold rule uses
  ``threshold_prior(tau)``, which puts most of its mass on p = 0 so that a stream with no events
  leaves tau at about ln(1 / (0.8 alpha)) / tau draws, near the fixed-n Clopper-Pearson
  ln(1 / alpha) / tau. Ends by bisection to 1e-12, reported on the excluded side.
  State: (t, S_t, lower, upper, the prior).
* ``BettingState``: Waudby-Smith & Ramdas (JRSSB 2024) hedged capital for E[X], X in [0, 1],
  with the confidence-sequence bets ``lambda_t = sqrt(2 ln(2/alpha) / (sigma2_{t-1} t ln(1+t)))``
  truncated at c/m and c/(1 - m), c = 1/2; m is rejected once K+ or K- reaches 2/alpha. On the
  grid m = j / grid; an end is the last rejected grid point (conservative by <= 1/grid). State:
  the log capital of both processes per grid point, the plug-in sums, t, lower, upper.
* ``uniform_dkw_epsilon``: the time-uniform DKW band of Howard & Ramdas (2022).

Assumptions: draws i.i.d. and folded in in sampling order; scores in [0, 1] (0/1 for the
mixture). Every state here is exact to float64: its JSON form round-trips bit for bit.
"""

from __future__ import annotations

import base64
import json
import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from shared.stats.betting import TRUNCATION

FloatArray = NDArray[np.float64]

_BISECTIONS = 46  # 2**-46 < 1.5e-14: below the 1e-12 the docs promise
# Rows of the (grid x draws) capital matrix evaluated at once: bounds memory by ~8 MB whatever
# the round size.
_BLOCK = 1024
BETTING_GRID = 1000


def uniform_dkw_epsilon(t: int, alpha: float) -> float:
    """Half-width of a CDF band valid at every t at once (Howard & Ramdas 2022, Theorem 2).

    ``P(exists t >= 1: sup_x |F_t(x) - F(x)| > eps_t) <= alpha`` with
    ``eps_t = 0.85 sqrt((ln ln(e t) + 0.8 ln(1612 / alpha)) / t)``, for i.i.d. draws from any
    distribution. About 1.8x the fixed-n two-sided DKW width at t = 1,024 and alpha = 0.01.
    """
    return 0.85 * math.sqrt((math.log(math.log(math.e * t)) + 0.8 * math.log(1612.0 / alpha)) / t)


# ---------------------------------------------------------------------------------------------
# Beta(1/2, 1/2) mixture for a proportion
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MixturePrior:
    """The mixing prior: atoms of mass ``zero`` at p = 0 and ``one`` at p = 1, plus
    ``1 - zero - one`` times Beta(a, b).

    Any prior fixed before the data gives a valid sequence; the prior only decides where the
    sequence is tight. ``zero > 0`` keeps the likelihood of an all-0 stream at (1 - p)^t instead
    of the Beta marginal's ~ t^-a (1 - p)^t, which is what certifies "below tau" early.
    """

    zero: float = 0.0
    one: float = 0.0
    a: float = 0.5
    b: float = 0.5

    def to_dict(self) -> dict[str, float]:
        return {"zero": self.zero, "one": self.one, "a": self.a, "b": self.b}

    @classmethod
    def from_dict(cls, d: dict[str, float]) -> MixturePrior:
        return cls(zero=float(d["zero"]), one=float(d["one"]), a=float(d["a"]), b=float(d["b"]))

    def log_marginal(self, s: FloatArray, f: FloatArray) -> FloatArray:
        """log of the prior-averaged likelihood of ``s`` ones and ``f`` zeros (in any order)."""
        from scipy.special import betaln  # a few hundred ms of import; only the mixture needs it

        out = np.asarray(betaln(s + self.a, f + self.b) - betaln(self.a, self.b), np.float64)
        if self.zero == 0.0 and self.one == 0.0:
            return out
        out = out + math.log1p(-(self.zero + self.one))
        # An atom's likelihood is 1 while the stream has only its value, 0 after the first other.
        if self.zero > 0.0:
            out = np.logaddexp(out, np.where(s == 0.0, math.log(self.zero), -np.inf))
        if self.one > 0.0:
            out = np.logaddexp(out, np.where(f == 0.0, math.log(self.one), -np.inf))
        return out


JEFFREYS = MixturePrior()
# Threshold prior for a small tau (the leak regime): 0.8 on p = 0 costs ln(1/0.8) = 0.22 nats
# against the fixed-n likelihood ratio of an all-0 stream, i.e. ~22 extra draws at tau = 0.01
# (478 against Clopper-Pearson's 459 at alpha = 0.01, against 851 for Beta(1/2, 1/2)). The rest
# is Beta(1/2, b) with mean 5 tau, so rates a few times tau are still certified "above" about as
# fast as with Beta(1/2, 1/2) (simulated in docs/metrics.md). Mirrored for tau near 1; between,
# both sides cost alike and Beta(1/2, 1/2) stays.
_ATOM_MASS = 0.8
_MEAN_OVER_TAU = 5.0
_TUNED_BELOW = 0.1


def threshold_prior(tau: float) -> MixturePrior:
    """The prior a p_full/survival threshold rule uses: tuned to tau, fixed before any draw."""
    if tau <= _TUNED_BELOW:
        mean = _MEAN_OVER_TAU * tau
        return MixturePrior(zero=_ATOM_MASS, a=0.5, b=0.5 * (1.0 - mean) / mean)
    if tau >= 1.0 - _TUNED_BELOW:
        mean = _MEAN_OVER_TAU * (1.0 - tau)
        return MixturePrior(one=_ATOM_MASS, a=0.5 * (1.0 - mean) / mean, b=0.5)
    return JEFFREYS


@dataclass(frozen=True)
class MixtureState:
    """``t`` outcomes seen, ``s`` of them 1; ``lower``/``upper``: the running intersection;
    ``prior``: the mixing prior, fixed at the stream's start and kept with it."""

    t: int = 0
    s: int = 0
    lower: float = 0.0
    upper: float = 1.0
    prior: MixturePrior = JEFFREYS

    def to_json(self) -> str:
        d: dict[str, object] = {"t": self.t, "s": self.s, "lower": self.lower, "upper": self.upper}
        if self.prior != JEFFREYS:  # states stored before priors existed read back as Jeffreys
            d["prior"] = self.prior.to_dict()
        return json.dumps(d)

    @classmethod
    def from_json(cls, text: str) -> MixtureState:
        d = json.loads(text)
        prior = MixturePrior.from_dict(d["prior"]) if "prior" in d else JEFFREYS
        return cls(
            t=int(d["t"]),
            s=int(d["s"]),
            lower=float(d["lower"]),
            upper=float(d["upper"]),
            prior=prior,
        )


def mixture_prefix_bounds(
    s: FloatArray, t: FloatArray, alpha: float, prior: MixturePrior = JEFFREYS
) -> tuple[FloatArray, FloatArray]:
    """The mixture interval after each prefix (``s`` ones in ``t`` outcomes), not intersected."""
    f = t - s
    # p is in C_t iff S log p + F log(1 - p) > log m_t + log alpha; the likelihood is unimodal
    # in p (maximum at S / t, which is always inside as m_t <= max likelihood), so C_t is an
    # interval whatever the prior.
    threshold = prior.log_marginal(s, f) + math.log(alpha)
    p_hat = s / t
    # Both ends at once: loglik is concave with its maximum at p_hat (inside); bisect towards
    # 0 and towards 1 together, keeping the `outside` point excluded (reported on that side).
    ss, ff, level = np.tile(s, 2), np.tile(f, 2), np.tile(threshold, 2)
    inside = np.tile(p_hat, 2)
    outside = np.concatenate([np.zeros(t.size), np.ones(t.size)])
    with np.errstate(divide="ignore", invalid="ignore"):
        at_end = np.where(ss > 0.0, ss * np.log(outside), 0.0) + np.where(
            ff > 0.0, ff * np.log1p(-outside), 0.0
        )
    open_end = at_end > level  # the end itself is inside the sequence: report it exactly
    with np.errstate(divide="ignore", invalid="ignore"):
        # mid is strictly inside (0, 1) except where the end itself is open (replaced below).
        for _ in range(_BISECTIONS):
            mid = 0.5 * (inside + outside)
            keep = ss * np.log(mid) + ff * np.log1p(-mid) > level
            inside = np.where(keep, mid, inside)
            outside = np.where(keep, outside, mid)
    ends = np.where(open_end, np.concatenate([np.zeros(t.size), np.ones(t.size)]), outside)
    return ends[: t.size], ends[t.size :]


def mixture_update(
    state: MixtureState, outcomes: NDArray[np.bool_], alpha: float
) -> tuple[MixtureState, FloatArray, FloatArray]:
    """Fold in a round of 0/1 outcomes (in sampling order).

    Returns the new state and the running-intersection bounds after each draw of the round.
    """
    k = int(outcomes.size)
    if k == 0:
        return state, np.empty(0), np.empty(0)
    s = state.s + np.cumsum(outcomes, dtype=np.float64)
    t = state.t + np.arange(1, k + 1, dtype=np.float64)
    lo, hi = mixture_prefix_bounds(s, t, alpha, state.prior)
    lo = np.maximum.accumulate(np.maximum(lo, state.lower))
    hi = np.minimum.accumulate(np.minimum(hi, state.upper))
    new = MixtureState(
        t=state.t + k, s=int(s[-1]), lower=float(lo[-1]), upper=float(hi[-1]), prior=state.prior
    )
    return new, lo, hi


# ---------------------------------------------------------------------------------------------
# Hedged-capital betting for a mean
# ---------------------------------------------------------------------------------------------


def _encode(a: FloatArray) -> str:
    return base64.b64encode(np.ascontiguousarray(a, dtype="<f8").tobytes()).decode("ascii")


def _decode(text: str) -> FloatArray:
    return np.frombuffer(base64.b64decode(text), dtype="<f8").astype(np.float64)


@dataclass(frozen=True)
class BettingState:
    """Log capital of K+ (``log_up``, for the lower end) and of K- (``log_down``, for the upper
    end, indexed by j for m = 1 - j / grid) at every grid point; the plug-in sums; the ends."""

    grid: int
    t: int
    sum_x: float
    sum_dev2: float
    log_up: FloatArray
    log_down: FloatArray
    lower: float = 0.0
    upper: float = 1.0

    @classmethod
    def start(cls, grid: int = BETTING_GRID) -> BettingState:
        return cls(
            grid=grid,
            t=0,
            sum_x=0.0,
            sum_dev2=0.0,
            log_up=np.zeros(grid + 1),
            log_down=np.zeros(grid + 1),
        )

    def to_json(self) -> str:
        return json.dumps({
            "grid": self.grid,
            "t": self.t,
            "sum_x": self.sum_x,
            "sum_dev2": self.sum_dev2,
            "log_up": _encode(self.log_up),
            "log_down": _encode(self.log_down),
            "lower": self.lower,
            "upper": self.upper,
        })  # fmt: skip

    @classmethod
    def from_json(cls, text: str) -> BettingState:
        d = json.loads(text)
        return cls(
            grid=int(d["grid"]),
            t=int(d["t"]),
            sum_x=float(d["sum_x"]),
            sum_dev2=float(d["sum_dev2"]),
            log_up=_decode(d["log_up"]),
            log_down=_decode(d["log_down"]),
            lower=float(d["lower"]),
            upper=float(d["upper"]),
        )


def _rejected_ends(
    log_k: FloatArray, values: FloatArray, lam: FloatArray, grid: FloatArray, level: float, c: float
) -> tuple[FloatArray, FloatArray]:
    """Advance one capital process over a block; returns (log capital after, end after each t).

    The rejected set {m : log K_t(m) >= level} is a prefix of the grid for each t (K+ falls as
    m rises), so its end is the last rejected grid point next to the first open one.
    """
    with np.errstate(divide="ignore"):
        cap = np.where(grid > 0.0, c / grid, np.inf)[:, None]
    bet = np.minimum(lam[None, :], cap)
    steps = np.log1p(bet * (values[None, :] - grid[:, None]))
    path = np.cumsum(steps, axis=1)
    path += log_k[:, None]
    rejected = path >= level
    first_open = np.argmin(rejected, axis=0).astype(np.float64)
    first_open[rejected.all(axis=0)] = grid.size
    ends: FloatArray = np.maximum(first_open - 1.0, 0.0) / (grid.size - 1)
    out: FloatArray = path[:, -1].copy()
    return out, ends


def betting_update(
    state: BettingState, x: FloatArray, alpha: float, c: float = TRUNCATION
) -> tuple[BettingState, FloatArray, FloatArray]:
    """Fold in a round of scores in [0, 1] (in sampling order).

    Returns the new state and the running-intersection bounds after each draw of the round.
    Memory is O(grid x 1,024) whatever the round size; time O(grid x round).
    """
    level = math.log(2.0 / alpha)
    grid = np.arange(state.grid + 1, dtype=np.float64) / state.grid
    t0, sum_x, sum_dev2 = state.t, state.sum_x, state.sum_dev2
    log_up, log_down = state.log_up, state.log_down
    lower_prev, upper_prev = state.lower, state.upper
    lowers, uppers = [], []
    for start in range(0, x.size, _BLOCK):
        xb = x[start : start + _BLOCK]
        k = xb.size
        t = t0 + np.arange(1, k + 1, dtype=np.float64)
        # Plug-in mean and variance after each draw; each bet uses the variance before its draw.
        csum = sum_x + np.cumsum(xb)
        mu = (0.5 + csum) / (t + 1.0)
        dev = xb - mu
        cdev = sum_dev2 + np.cumsum(dev * dev)
        sigma2 = (0.25 + cdev) / (t + 1.0)
        sigma2_before = np.concatenate([[(0.25 + sum_dev2) / (t0 + 1.0)], sigma2[:-1]])
        lam = np.sqrt(2.0 * level / (sigma2_before * t * np.log1p(t)))
        log_up, lo_ends = _rejected_ends(log_up, xb, lam, grid, level, c)
        # K-(m) on X is K+(1 - m) on 1 - X: the same bets, mirrored scores and grid.
        log_down, hi_ends = _rejected_ends(log_down, 1.0 - xb, lam, grid, level, c)
        lo = np.maximum.accumulate(np.maximum(lo_ends, lower_prev))
        hi = np.minimum.accumulate(np.minimum(1.0 - hi_ends, upper_prev))
        lowers.append(lo)
        uppers.append(hi)
        lower_prev, upper_prev = float(lo[-1]), float(hi[-1])
        t0, sum_x, sum_dev2 = t0 + k, float(csum[-1]), float(cdev[-1])
    new = BettingState(
        grid=state.grid,
        t=t0,
        sum_x=sum_x,
        sum_dev2=sum_dev2,
        log_up=log_up,
        log_down=log_down,
        lower=lower_prev,
        upper=upper_prev,
    )
    if not lowers:
        return new, np.empty(0), np.empty(0)
    return new, np.concatenate(lowers), np.concatenate(uppers)
