"""Frequentist statistics over sufficient statistics: pure functions returning frozen results.

Every function takes counts, sums and sums of squares (never raw rows), performs no I/O, and
returns a frozen result. Degenerate input (an empty arm, zero variance) gives a result whose
``status`` is one of the named constants below and whose undefined figures are ``None``; nothing
raises and nothing leaks NaN.

Conventions: ``control`` is group 2 and ``variant`` group 1, so a lift is ``variant - control``.
``alternative`` is :data:`TWO_SIDED` (``alpha`` 0.05 gives 95% intervals) or :data:`GREATER`
(one-sided: "the variant is better"; intervals are one-sided, their upper end infinite).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from scipy import stats as sps

from campaigns.experiments.score import score_interval_diff, score_interval_ratio

#: The figures are defined.
OK = "ok"
#: An arm has no units (or, for means, fewer than two).
NO_DATA = "no_data"
#: The outcome does not vary in either arm, so no test or interval exists.
ZERO_VARIANCE = "zero_variance"
#: The control rate is 0: relative lift is undefined (absolute lift still is).
ZERO_CONTROL = "zero_control"

#: Fisher's exact test replaces the z-test when any expected cell of the 2x2 table is below this
#: (Cochran's rule: below 5 the normal approximation to the z statistic is unreliable).
FISHER_BELOW_EXPECTED = 5.0

#: A sample-ratio-mismatch check flags the split as broken below this p-value. It is strict on
#: purpose: the check runs on every look, and a false alarm stops an experiment.
SRM_ALPHA = 0.001

Z_TEST = "two-proportion z-test"
FISHER = "Fisher's exact test"

#: Two-sided tests and intervals (the default).
TWO_SIDED = "two-sided"
#: One-sided: the alternative is "the variant's rate (or mean) is higher than control's".
GREATER = "greater"
ALTERNATIVES = (TWO_SIDED, GREATER)


@dataclass(frozen=True)
class Proportion:
    """``successes`` out of ``n`` units."""

    n: int
    successes: int

    @property
    def rate(self) -> float | None:
        return self.successes / self.n if self.n else None


@dataclass(frozen=True)
class Moments:
    """Count, sum and sum of squares of a numeric outcome per unit (zeros included)."""

    n: int
    total: float
    total_sq: float

    @property
    def mean(self) -> float | None:
        return self.total / self.n if self.n else None

    @property
    def variance(self) -> float | None:
        """The sample variance (n - 1 in the denominator); None below two units."""
        if self.n < 2:
            return None
        return max((self.total_sq - self.total * self.total / self.n) / (self.n - 1), 0.0)


@dataclass(frozen=True)
class Interval:
    low: float
    high: float

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high


@dataclass(frozen=True)
class ProportionComparison:
    """A variant's rate against control's.

    ``abs_lift_ci`` and ``rel_lift_ci`` are the score intervals of the difference and of the
    risk ratio (minus 1) that invert the pooled z-test (:mod:`.score`): each excludes "no change"
    exactly when the z-test's p is below alpha, and the relative one never goes below -100%.
    ``newcombe_ci`` (Newcombe's hybrid score interval, method 10 of Newcombe 1998) and
    ``wald_ci`` (the textbook interval) are shown alongside. ``test`` names the test behind
    ``p_value`` (:data:`Z_TEST` or :data:`FISHER`); ``alternative`` its sidedness.
    """

    status: str
    abs_lift: float | None = None
    abs_lift_ci: Interval | None = None
    wald_ci: Interval | None = None
    rel_lift: float | None = None
    rel_lift_ci: Interval | None = None
    p_value: float | None = None
    test: str | None = None
    statistic: float | None = None
    newcombe_ci: Interval | None = None
    alternative: str = TWO_SIDED


@dataclass(frozen=True)
class MeanComparison:
    """Welch's unequal-variance t-test of a variant's mean against control's."""

    status: str
    diff: float | None = None
    ci: Interval | None = None
    rel_lift: float | None = None
    p_value: float | None = None
    statistic: float | None = None
    df: float | None = None


@dataclass(frozen=True)
class SampleRatioCheck:
    """Pearson's chi-square of the observed units per arm against the configured shares."""

    status: str
    observed: tuple[int, ...]
    expected: tuple[float, ...]
    statistic: float | None = None
    p_value: float | None = None

    @property
    def mismatch(self) -> bool:
        return self.p_value is not None and self.p_value < SRM_ALPHA


def _z(alpha: float) -> float:
    return float(sps.norm.isf(alpha / 2))


def _tail_quantiles(alpha: float, alternative: str) -> tuple[float, float]:
    """The normal quantiles bounding an interval below and above (``inf``: unbounded)."""
    if alternative == GREATER:
        return float(sps.norm.isf(alpha)), math.inf
    z = _z(alpha)
    return z, z


def score_intervals(
    control: Proportion, variant: Proportion, alpha: float, alternative: str = TWO_SIDED
) -> tuple[Interval, Interval | None]:
    """The absolute and relative lift intervals that invert the pooled z-test at ``alpha``
    (both arms need units; the relative one is None when control has no successes)."""
    x1, n1, x2, n2 = variant.successes, variant.n, control.successes, control.n
    z_low, z_high = _tail_quantiles(alpha, alternative)
    low, high = score_interval_diff(x1, n1, x2, n2, z_low, z_high)
    absolute = Interval(low, math.inf if math.isinf(z_high) else high)
    if x2 == 0:
        return absolute, None
    r_low, r_high = score_interval_ratio(x1, n1, x2, n2, z_low, z_high)
    return absolute, Interval(r_low - 1, r_high - 1)


def wilson_interval(successes: int, n: int, alpha: float = 0.05) -> Interval:
    """Wilson's score interval for one proportion (no continuity correction); n must be > 0."""
    z = _z(alpha)
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return Interval(max(centre - half, 0.0), min(centre + half, 1.0))


def expected_cells(control: Proportion, variant: Proportion) -> tuple[float, ...]:
    """The expected counts of the 2x2 table under "no difference"."""
    total = control.n + variant.n
    hits = control.successes + variant.successes
    misses = total - hits
    return tuple(
        row * column / total for row in (variant.n, control.n) for column in (hits, misses)
    )


def compare_proportions(
    control: Proportion, variant: Proportion, alpha: float = 0.05, alternative: str = TWO_SIDED
) -> ProportionComparison:
    """Absolute and relative lift of ``variant`` over ``control`` with intervals and a p-value.

    The p-value is the pooled two-proportion z-test, or Fisher's exact test when an expected cell
    count is below :data:`FISHER_BELOW_EXPECTED`.
    """
    if control.n == 0 or variant.n == 0:
        return ProportionComparison(status=NO_DATA)
    z = _z(alpha)
    p1, p2 = variant.successes / variant.n, control.successes / control.n
    diff = p1 - p2
    var1, var2 = p1 * (1 - p1) / variant.n, p2 * (1 - p2) / control.n
    wald_half = z * math.sqrt(var1 + var2)
    wald = Interval(diff - wald_half, diff + wald_half)
    w1 = wilson_interval(variant.successes, variant.n, alpha)
    w2 = wilson_interval(control.successes, control.n, alpha)
    newcombe = Interval(
        diff - math.sqrt((p1 - w1.low) ** 2 + (w2.high - p2) ** 2),
        diff + math.sqrt((w1.high - p1) ** 2 + (p2 - w2.low) ** 2),
    )

    if min(expected_cells(control, variant)) < FISHER_BELOW_EXPECTED:
        table = [
            [variant.successes, variant.n - variant.successes],
            [control.successes, control.n - control.successes],
        ]
        odds, p_value = sps.fisher_exact(table, alternative=alternative)
        test, statistic = FISHER, float(odds) if math.isfinite(odds) else None
    else:
        pooled = (variant.successes + control.successes) / (variant.n + control.n)
        se = math.sqrt(pooled * (1 - pooled) * (1 / variant.n + 1 / control.n))
        # Large tables with a pooled rate of 0 or 1 have expected cells of 0 and went to Fisher.
        statistic = diff / se
        p_value = (
            float(sps.norm.sf(statistic))
            if alternative == GREATER
            else 2 * float(sps.norm.sf(abs(statistic)))
        )
        test = Z_TEST

    absolute, relative = score_intervals(control, variant, alpha, alternative)
    status, rel = OK, None
    if p2 == 0:
        status = ZERO_CONTROL
    else:
        rel = p1 / p2 - 1
    return ProportionComparison(
        status=status,
        abs_lift=diff,
        abs_lift_ci=absolute,
        wald_ci=wald,
        rel_lift=rel,
        rel_lift_ci=relative,
        p_value=min(float(p_value), 1.0),
        test=test,
        statistic=statistic,
        newcombe_ci=newcombe,
        alternative=alternative,
    )


def welch_test(
    control: Moments, variant: Moments, alpha: float = 0.05, alternative: str = TWO_SIDED
) -> MeanComparison:
    """Welch's t-test and interval for ``variant.mean - control.mean`` (revenue per exposure);
    the interval is two-sided, the p-value as ``alternative`` says."""
    if control.variance is None or variant.variance is None:
        return MeanComparison(status=NO_DATA)
    assert control.mean is not None
    assert variant.mean is not None
    diff = float(variant.mean - control.mean)
    rel = diff / control.mean if control.mean else None
    a, b = variant.variance / variant.n, control.variance / control.n
    if a + b == 0:
        return MeanComparison(status=ZERO_VARIANCE, diff=diff, rel_lift=rel)
    se = math.sqrt(a + b)
    df = (a + b) ** 2 / (a * a / (variant.n - 1) + b * b / (control.n - 1))
    t = diff / se
    half = float(sps.t.isf(alpha / 2, df)) * se
    return MeanComparison(
        status=OK,
        diff=diff,
        ci=Interval(diff - half, diff + half),
        rel_lift=rel,
        p_value=(
            float(sps.t.sf(t, df)) if alternative == GREATER else 2 * float(sps.t.sf(abs(t), df))
        ),
        statistic=t,
        df=df,
    )


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment (controls the family-wise error rate), in input order."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted


def sample_ratio_check(observed: Sequence[int], shares: Sequence[float]) -> SampleRatioCheck:
    """Chi-square goodness of fit of units per arm to the configured shares (normalised)."""
    total = sum(observed)
    share_sum = sum(shares)
    expected = tuple(total * s / share_sum for s in shares)
    if total == 0 or len(observed) < 2:
        return SampleRatioCheck(status=NO_DATA, observed=tuple(observed), expected=expected)
    statistic = sum((o - e) ** 2 / e for o, e in zip(observed, expected, strict=True))
    p_value = float(sps.chi2.sf(statistic, len(observed) - 1))
    return SampleRatioCheck(OK, tuple(observed), expected, statistic, p_value)
