"""CUPED: variance reduction with a pre-period covariate (Deng, Xu, Kohavi, Walker 2013).

Each unit's outcome ``Y`` is replaced by ``Y - theta (X - mean X)``, where ``X`` is known before
exposure (the customer's spend in the days before), so the adjustment cannot be affected by the
treatment and the estimate stays unbiased. ``theta`` is the pooled within-arm regression slope of
Y on X, which makes the adjusted difference exactly the treatment coefficient of the ANCOVA
regression ``Y ~ arm + X``. Its variance is each arm's ``var(Y - theta X) / n``, summed; the
variance drops by about the squared correlation of X and Y.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy import stats as sps

from campaigns.experiments.stats import NO_DATA, OK, ZERO_VARIANCE, Interval


@dataclass(frozen=True)
class CovariateMoments:
    """Sums per arm over units: outcome ``y``, covariate ``x``, their squares and product."""

    n: int
    sum_y: float
    sum_y2: float
    sum_x: float
    sum_x2: float
    sum_xy: float

    def centred(self) -> tuple[float, float, float]:
        """Centred sums of squares and products: Syy, Sxx, Sxy."""
        syy = self.sum_y2 - self.sum_y**2 / self.n
        sxx = self.sum_x2 - self.sum_x**2 / self.n
        sxy = self.sum_xy - self.sum_x * self.sum_y / self.n
        return max(syy, 0.0), max(sxx, 0.0), sxy


@dataclass(frozen=True)
class CupedResult:
    """The adjusted difference ``variant - control`` with its interval, beside the unadjusted."""

    status: str
    theta: float | None = None
    diff: float | None = None
    ci: Interval | None = None
    p_value: float | None = None
    unadjusted_se: float | None = None
    adjusted_se: float | None = None

    @property
    def variance_reduction(self) -> float | None:
        """The share of the difference's variance removed by the adjustment."""
        if self.adjusted_se is None or not self.unadjusted_se:
            return None
        return 1 - (self.adjusted_se / self.unadjusted_se) ** 2


def cuped(control: CovariateMoments, variant: CovariateMoments, alpha: float = 0.05) -> CupedResult:
    """The CUPED-adjusted difference in means of ``variant`` against ``control``."""
    if control.n < 2 or variant.n < 2:
        return CupedResult(status=NO_DATA)
    syy_c, sxx_c, sxy_c = control.centred()
    syy_v, sxx_v, sxy_v = variant.centred()
    if sxx_c + sxx_v <= 0:
        return CupedResult(status=ZERO_VARIANCE)
    theta = float((sxy_c + sxy_v) / (sxx_c + sxx_v))

    def adjusted_variance(syy: float, sxx: float, sxy: float, n: int) -> float:
        return max(syy + theta * theta * sxx - 2 * theta * sxy, 0.0) / (n - 1) / n

    unadjusted = syy_c / (control.n - 1) / control.n + syy_v / (variant.n - 1) / variant.n
    adjusted = adjusted_variance(syy_c, sxx_c, sxy_c, control.n) + adjusted_variance(
        syy_v, sxx_v, sxy_v, variant.n
    )
    mean = float(
        variant.sum_y / variant.n
        - control.sum_y / control.n
        - theta * (variant.sum_x / variant.n - control.sum_x / control.n)
    )
    if adjusted <= 0:
        return CupedResult(status=ZERO_VARIANCE, theta=theta, diff=mean)
    se = math.sqrt(adjusted)
    half = float(sps.norm.isf(alpha / 2)) * se
    return CupedResult(
        status=OK,
        theta=theta,
        diff=mean,
        ci=Interval(mean - half, mean + half),
        p_value=2 * float(sps.norm.sf(abs(mean) / se)),
        unadjusted_se=math.sqrt(unadjusted),
        adjusted_se=se,
    )
