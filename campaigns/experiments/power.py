"""Power for comparing two proportions: sample size for an effect, and the detectable effect.

Both use Cohen's arcsine effect size ``h = 2 asin(sqrt(p2)) - 2 asin(sqrt(p1))`` with the normal
approximation, as :class:`statsmodels.stats.power.NormalIndPower` does, so our figures match it.
The far tail (rejecting in the wrong direction) is ignored: it changes nothing at the fourth digit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy import stats as sps

from campaigns.experiments.stats import NO_DATA, OK

#: The requested effect takes the rate outside [0, 1], or no effect is detectable at this size.
NOT_DETECTABLE = "not_detectable"


@dataclass(frozen=True)
class SampleSize:
    """Units needed in control and in the variant to detect ``effect`` with the chosen power."""

    status: str
    control: int | None = None
    variant: int | None = None

    @property
    def total(self) -> int | None:
        if self.control is None or self.variant is None:
            return None
        return self.control + self.variant


@dataclass(frozen=True)
class DetectableEffect:
    """The smallest absolute lift over ``baseline`` detectable with the current units."""

    status: str
    effect: float | None = None


def _h(p1: float, p2: float) -> float:
    return 2 * math.asin(math.sqrt(p2)) - 2 * math.asin(math.sqrt(p1))


def _z_sum(alpha: float, power: float) -> float:
    return float(sps.norm.isf(alpha / 2) + sps.norm.ppf(power))


def sample_size(
    baseline: float, effect: float, alpha: float = 0.05, power: float = 0.8, ratio: float = 1.0
) -> SampleSize:
    """Units per arm to detect an absolute lift of ``effect`` over the ``baseline`` rate.

    ``ratio`` is variant units per control unit (the weights' ratio).
    """
    target = baseline + effect
    if not 0 < baseline < 1 or not 0 < target < 1 or effect == 0 or ratio <= 0:
        return SampleSize(status=NOT_DETECTABLE)
    h = abs(_h(baseline, target))
    # n_control * ratio / (1 + ratio) = ((z_a + z_b) / h)^2, the effective size of two arms.
    control = (_z_sum(alpha, power) / h) ** 2 * (1 + 1 / ratio)
    return SampleSize(OK, math.ceil(control - 1e-9), math.ceil(control * ratio - 1e-9))


def detectable_effect(
    baseline: float, control_n: int, variant_n: int, alpha: float = 0.05, power: float = 0.8
) -> DetectableEffect:
    """The smallest upward absolute lift detectable with ``control_n`` and ``variant_n`` units."""
    if control_n <= 0 or variant_n <= 0:
        return DetectableEffect(status=NO_DATA)
    if not 0 < baseline < 1:
        return DetectableEffect(status=NOT_DETECTABLE)
    effective = control_n * variant_n / (control_n + variant_n)
    h = _z_sum(alpha, power) / math.sqrt(effective)
    angle = math.asin(math.sqrt(baseline)) + h / 2
    if angle >= math.pi / 2:
        return DetectableEffect(status=NOT_DETECTABLE)
    return DetectableEffect(OK, math.sin(angle) ** 2 - baseline)


def sequential_power(
    baseline: float, effect: float, n: float, alpha: float = 0.05, tau: float | None = None
) -> float:
    """The probability that the always-valid (mixture SPRT) test has rejected, in the right
    direction, at a look with ``n`` units per arm, when the true lift is ``effect``.

    Only that look's crossing counts (earlier crossings add to it), so it is a lower bound on the
    power of looking at every step up to ``n``; ``tau`` defaults to ``effect``.
    """
    tau = effect if tau is None else tau
    target = baseline + effect
    variance = (baseline * (1 - baseline) + target * (1 - target)) / n
    tau2 = tau * tau
    total = variance + tau2
    boundary = math.sqrt(
        variance * total / tau2 * (math.log(total / variance) - 2 * math.log(alpha))
    )
    return float(sps.norm.cdf((abs(effect) - boundary) / math.sqrt(variance)))


def sequential_sample_size(
    baseline: float, effect: float, alpha: float = 0.05, power: float = 0.8
) -> SampleSize:
    """Units per arm for the always-valid test to reach ``power`` (equal arms): the horizon of a
    sequential design. Larger than :func:`sample_size`, the price of looking at any time."""
    fixed = sample_size(baseline, effect, alpha, power)
    if fixed.control is None:
        return fixed
    low, high = float(fixed.control), float(fixed.control)
    while sequential_power(baseline, effect, high, alpha) < power:
        low, high = high, 2 * high
    while high - low > 0.5:
        middle = (low + high) / 2
        if sequential_power(baseline, effect, middle, alpha) < power:
            low = middle
        else:
            high = middle
    n = math.ceil(high - 1e-9)
    return SampleSize(OK, n, n)
