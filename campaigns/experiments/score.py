"""Score intervals for two proportions: the intervals that invert the pooled z-test.

The pooled two-proportion z-test is the score test of "no difference". Testing instead
"difference = d" (or "ratio = r") with the variance taken at the maximum-likelihood rates
*under that hypothesis* gives a score statistic for every d (or r); the interval is every value
the test does not reject (Miettinen and Nurminen 1985, without their n / (n - 1) factor, so that
at d = 0 and r = 1 the statistic is exactly the pooled z). Hence an interval excludes "no change"
exactly when the z-test's p is below alpha: the report can never quote a significant p beside an
interval through zero, or the other way round. The ratio interval is the risk ratio's, so the
relative lift ``r - 1`` never goes below -100%.

The restricted estimate is a quadratic's root for the ratio (Farrington
and Manning 1990); for the difference it is found numerically (see :func:`_restricted_diff`).
Our figures equal statsmodels' ``confint_proportions_2indep(..., method="score",
correction=False)`` for the ratio, and for the difference wherever its closed form finds the
maximum (to 1e-9 with hundreds of units per arm).
"""

from __future__ import annotations

import math
from collections.abc import Callable

from scipy import optimize

#: Search limits: a difference stays inside (-1, 1), a ratio inside (0, inf).
_EDGE = 1e-12


def _restricted_diff(x1: int, n1: int, x2: int, n2: int, d: float) -> tuple[float, float]:
    """The maximum-likelihood (p1, p2) under p1 - p2 = d, found directly.

    Miettinen and Nurminen's closed-form cubic (as statsmodels 0.15 codes it) can land beside
    the maximum, by up to 1e-4 in the rates for small counts; the likelihood is concave along
    the constraint, so its derivative's single root is found instead.
    """
    if d == 0:
        pooled = (x1 + x2) / (n1 + n2)
        return pooled, pooled
    q2 = _maximise(x1, n1, x2, n2, lambda q: q + d, 1.0, max(0.0, -d), min(1.0, 1.0 - d))
    return q2 + d, q2


def _restricted_ratio(x1: int, n1: int, x2: int, n2: int, r: float) -> tuple[float, float]:
    """The maximum-likelihood (p1, p2) under p1 = r p2 (the smaller root of a quadratic)."""
    a = (n1 + n2) * r
    b = -(n1 * r + x1 + n2 + x2 * r)
    c = x1 + x2
    disc = max(b * b - 4 * a * c, 0.0)
    q2 = (-b - math.sqrt(disc)) / (2 * a)
    if not (0.0 <= q2 <= 1.0 and r * q2 <= 1.0):
        q2 = _maximise(x1, n1, x2, n2, lambda q: r * q, r, 0.0, min(1.0, 1.0 / r))
    return r * q2, q2


def _maximise(
    x1: int,
    n1: int,
    x2: int,
    n2: int,
    rate1: Callable[[float], float],
    slope: float,
    low: float,
    high: float,
) -> float:
    """The control rate q2 in [low, high] maximising the binomial log-likelihood of both arms
    when the variant's rate is ``rate1(q2)`` (linear, with ``slope``); the likelihood is concave
    along the line, so its derivative has one root (or the maximum is at an end)."""

    def derivative(q2: float) -> float:
        q1 = rate1(q2)
        total = 0.0
        for hits, n, q, scale in ((x1, n1, q1, slope), (x2, n2, q2, 1.0)):
            if hits:
                total += scale * hits / q if q > 0 else math.inf
            if n - hits:
                total -= scale * (n - hits) / (1 - q) if q < 1 else math.inf
        return total

    if derivative(low) <= 0:
        return low
    if derivative(high) >= 0:
        return high
    return float(optimize.brentq(derivative, low, high, xtol=1e-15, rtol=1e-14))


def diff_statistic(x1: int, n1: int, x2: int, n2: int, d: float) -> float:
    """The score statistic of "p1 - p2 = d" (at d = 0: the pooled z)."""
    q1, q2 = _restricted_diff(x1, n1, x2, n2, d)
    variance = q1 * (1 - q1) / n1 + q2 * (1 - q2) / n2
    gap = x1 / n1 - x2 / n2 - d
    if variance <= 0:
        return 0.0 if gap == 0 else math.copysign(math.inf, gap)
    return gap / math.sqrt(variance)


def ratio_statistic(x1: int, n1: int, x2: int, n2: int, r: float) -> float:
    """The score statistic of "p1 / p2 = r" (at r = 1: the pooled z)."""
    q1, q2 = _restricted_ratio(x1, n1, x2, n2, r)
    variance = q1 * (1 - q1) / n1 + r * r * q2 * (1 - q2) / n2
    gap = x1 / n1 - r * x2 / n2
    if variance <= 0:
        return 0.0 if gap == 0 else math.copysign(math.inf, gap)
    return gap / math.sqrt(variance)


def _bound(stat: Callable[[float], float], target: float, low: float, high: float) -> float:
    """Where the decreasing ``stat`` crosses ``target`` between ``low`` and ``high``."""
    f_low, f_high = stat(low) - target, stat(high) - target
    if f_low <= 0:
        return low
    if f_high >= 0:
        return high
    return float(optimize.brentq(lambda v: stat(v) - target, low, high, xtol=1e-14, rtol=1e-13))


def score_interval_diff(
    x1: int, n1: int, x2: int, n2: int, z_low: float, z_high: float
) -> tuple[float, float]:
    """The interval of ``p1 - p2``: every d whose statistic lies in [-z_high, z_low].

    ``z_low`` sets the lower bound (the normal quantile of its tail; ``inf`` leaves it at -1),
    ``z_high`` the upper bound.
    """
    estimate = x1 / n1 - x2 / n2

    def stat(d: float) -> float:
        return diff_statistic(x1, n1, x2, n2, d)

    low = -1.0 if math.isinf(z_low) else _bound(stat, z_low, -1 + _EDGE, estimate)
    high = 1.0 if math.isinf(z_high) else _bound(stat, -z_high, estimate, 1 - _EDGE)
    return low, high


def score_interval_ratio(
    x1: int, n1: int, x2: int, n2: int, z_low: float, z_high: float
) -> tuple[float, float]:
    """The interval of ``p1 / p2`` (control ``x2`` must be positive); the upper bound is
    ``inf`` when variant ``x1`` is all of ``n1``... or when the data cannot bound it."""
    estimate = (x1 / n1) / (x2 / n2)

    def stat(log_r: float) -> float:
        return ratio_statistic(x1, n1, x2, n2, math.exp(log_r))

    # With no variant successes the estimate is 0; the search starts just above it.
    centre = math.log(estimate) if estimate > 0 else math.log(1e-9)
    if math.isinf(z_low) or x1 == 0:
        low = 0.0
    else:
        low = math.exp(_bound(stat, z_low, centre - 50.0, centre))
    if math.isinf(z_high):
        high = math.inf
    else:
        found = _bound(stat, -z_high, centre, centre + 50.0)
        high = math.inf if found >= centre + 50.0 else math.exp(found)
    return low, high
