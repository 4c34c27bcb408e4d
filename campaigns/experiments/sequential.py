"""Always-valid p-values and confidence sequences: the mixture sequential probability ratio test.

For an estimated difference ``d`` with variance ``V`` (both arms' variances over their sizes) and a
normal mixing distribution ``N(0, tau^2)`` over the true difference, the mixture likelihood ratio
against "no difference" is (Johari, Pekelis, Walsh 2017, "Always valid inference")::

    L = sqrt(V / (V + tau^2)) * exp(tau^2 d^2 / (2 V (V + tau^2)))

and ``min(1, 1 / L)``, minimised over every look so far, is a p-value that stays valid however
often one looks. Inverting ``L < 1 / alpha`` gives a confidence sequence::

    d ± sqrt(V (V + tau^2) / tau^2 * (log((V + tau^2) / V) - 2 log alpha))

intersected over the looks. We take ``tau`` equal to the minimum detectable effect the experiment
registered, which makes the test most sensitive near the effects it was designed to find.

One-sided ("the variant is better"): the mixing distribution is the half-normal over positive
differences, which multiplies ``L`` by ``2 Phi(d tau / sqrt(V (V + tau^2)))`` (the posterior
probability of a positive difference, over the prior's 1/2); the confidence sequence is then a
lower bound, where that ratio reaches ``1 / alpha``.

GrowthBook's gbstats computes the same two-sided always-valid p (its ``SequentialTwoSidedTTest``,
Waudby-Smith et al. 2023, eq. 155) in another parametrisation: its ``rho`` from a tuning sample
size is ours with ``rho^2 = tau^2 / (n V)``, ``n`` the units of both arms (pinned in
tests/test_experiment_stats.py).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from scipy import optimize
from scipy import stats as sps

from campaigns.experiments.stats import (
    GREATER,
    NO_DATA,
    OK,
    TWO_SIDED,
    ZERO_VARIANCE,
    Interval,
    Proportion,
)


@dataclass(frozen=True)
class SequentialResult:
    """The always-valid p-value and interval after one look (or the running ones over looks)."""

    status: str
    diff: float | None = None
    p_value: float | None = None
    ci: Interval | None = None


def _log_ratio(diff: float, variance: float, tau2: float, alternative: str) -> float:
    total = variance + tau2
    log_ratio = 0.5 * math.log(variance / total) + tau2 * diff * diff / (2 * variance * total)
    if alternative == GREATER:
        shift = diff * math.sqrt(tau2) / math.sqrt(variance * total)
        log_ratio += math.log(2.0) + float(sps.norm.logcdf(shift))
    return log_ratio


def msprt(
    diff: float,
    variance: float,
    tau: float,
    alpha: float = 0.05,
    alternative: str = TWO_SIDED,
) -> SequentialResult:
    """The mixture SPRT at one look, for a difference ``diff`` with ``variance`` (normal)."""
    if not variance > 0 or not tau > 0:
        return SequentialResult(status=ZERO_VARIANCE, diff=diff)
    tau2 = tau * tau
    total = variance + tau2
    log_ratio = _log_ratio(diff, variance, tau2, alternative)
    p_value = math.exp(-log_ratio) if log_ratio > 0 else 1.0
    if alternative == GREATER:
        # The shift x at which the one-sided ratio reaches 1 / alpha (it increases with x).
        target = -math.log(alpha)
        high = math.sqrt(variance * total / tau2 * (math.log(total / variance) + 2 * target))
        x = optimize.brentq(
            lambda v: _log_ratio(v, variance, tau2, GREATER) - target, 0.0, high + 1e-12
        )
        return SequentialResult(OK, diff, min(p_value, 1.0), Interval(diff - x, math.inf))
    half = math.sqrt(variance * total / tau2 * (math.log(total / variance) - 2 * math.log(alpha)))
    return SequentialResult(OK, diff, min(p_value, 1.0), Interval(diff - half, diff + half))


def msprt_proportions(
    control: Proportion,
    variant: Proportion,
    tau: float,
    alpha: float = 0.05,
    alternative: str = TWO_SIDED,
) -> SequentialResult:
    """One look at two proportions (unpooled variance of the difference)."""
    if control.n == 0 or variant.n == 0:
        return SequentialResult(status=NO_DATA)
    p1, p2 = variant.successes / variant.n, control.successes / control.n
    variance = p1 * (1 - p1) / variant.n + p2 * (1 - p2) / control.n
    return msprt(p1 - p2, variance, tau, alpha, alternative)


def running(looks: Iterable[SequentialResult]) -> list[SequentialResult]:
    """Always-valid figures after each look: the running minimum p-value and the running
    intersection of intervals (an interval never widens, the p-value never rises)."""
    out: list[SequentialResult] = []
    best_p: float | None = None
    low, high = -math.inf, math.inf
    for look in looks:
        if look.status != OK or look.p_value is None or look.ci is None:
            out.append(out[-1] if out else look)
            continue
        best_p = look.p_value if best_p is None else min(best_p, look.p_value)
        low, high = max(low, look.ci.low), min(high, look.ci.high)
        if low > high:
            # Only possible when the estimate jumps; keep the newest look's interval then.
            low, high = look.ci.low, look.ci.high
        out.append(SequentialResult(OK, look.diff, best_p, Interval(low, high)))
    return out
