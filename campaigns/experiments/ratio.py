"""Ratio metrics by the delta method: a ratio of two per-unit sums, such as orders per clicker.

For units ``i`` with numerator ``x_i`` and denominator ``y_i`` (both per unit: conversions and
clicks of a customer), an arm's ratio is ``R = sum x / sum y``. Its variance by the delta method
(first-order Taylor expansion of ``mean x / mean y``) is::

    var(R) = (var x - 2 R cov(x, y) + R^2 var y) / (n mean(y)^2)

with sample (co)variances; arms are independent, so the difference of two ratios has the sum of
their variances, and a z-test and interval follow. It takes sums, sums of squares and the sum of
products per arm (sufficient statistics); the figures equal statsmodels'
``stats._delta_method.NonlinearDeltaCov`` on the two means.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy import stats as sps

from campaigns.experiments.stats import NO_DATA, OK, ZERO_VARIANCE, Interval


@dataclass(frozen=True)
class RatioMoments:
    """Per arm: units, sums of numerator and denominator, their squares and their product."""

    n: int
    sum_x: float
    sum_y: float
    sum_xx: float
    sum_yy: float
    sum_xy: float

    @property
    def ratio(self) -> float | None:
        return self.sum_x / self.sum_y if self.sum_y else None

    def variance(self) -> float | None:
        """The delta-method variance of the ratio; None below two units or without a
        denominator."""
        if self.n < 2 or not self.sum_y:
            return None
        n = self.n
        mean_x, mean_y = self.sum_x / n, self.sum_y / n
        var_x = (self.sum_xx - n * mean_x * mean_x) / (n - 1)
        var_y = (self.sum_yy - n * mean_y * mean_y) / (n - 1)
        cov = (self.sum_xy - n * mean_x * mean_y) / (n - 1)
        r = mean_x / mean_y
        return max((var_x - 2 * r * cov + r * r * var_y) / (n * mean_y * mean_y), 0.0)


@dataclass(frozen=True)
class RatioComparison:
    """A variant's ratio against control's: the difference with its interval and z-test."""

    status: str
    control: float | None = None
    variant: float | None = None
    diff: float | None = None
    ci: Interval | None = None
    rel_lift: float | None = None
    p_value: float | None = None


def ratio_test(
    control: RatioMoments, variant: RatioMoments, alpha: float = 0.05
) -> RatioComparison:
    """The difference ``variant - control`` of two ratio metrics (two-sided)."""
    var_c, var_v = control.variance(), variant.variance()
    if var_c is None or var_v is None or control.ratio is None or variant.ratio is None:
        return RatioComparison(status=NO_DATA, control=control.ratio, variant=variant.ratio)
    diff = variant.ratio - control.ratio
    rel = diff / control.ratio if control.ratio else None
    variance = var_c + var_v
    if variance <= 0:
        return RatioComparison(ZERO_VARIANCE, control.ratio, variant.ratio, diff, rel_lift=rel)
    se = math.sqrt(variance)
    half = float(sps.norm.isf(alpha / 2)) * se
    return RatioComparison(
        status=OK,
        control=control.ratio,
        variant=variant.ratio,
        diff=diff,
        ci=Interval(diff - half, diff + half),
        rel_lift=rel,
        p_value=2 * float(sps.norm.sf(abs(diff) / se)),
    )
