"""The experiment statistics, pinned by reference numbers.

Each expected value was computed with the scipy or statsmodels call in the comment beside it
(scipy 1.17, statsmodels 0.15), or is a case with a known answer.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate
from scipy import stats as sps

from campaigns.experiments.bayes import prob_beats
from campaigns.experiments.cuped import CovariateMoments, cuped
from campaigns.experiments.power import NOT_DETECTABLE, detectable_effect, sample_size
from campaigns.experiments.sequential import msprt, msprt_proportions, running
from campaigns.experiments.stats import (
    FISHER,
    NO_DATA,
    OK,
    Z_TEST,
    ZERO_CONTROL,
    ZERO_VARIANCE,
    Moments,
    Proportion,
    compare_proportions,
    holm,
    sample_ratio_check,
    welch_test,
    wilson_interval,
)

approx = pytest.approx

# ------------------------------------------------------------------------------ proportions

CONTROL = Proportion(10_000, 500)
VARIANT = Proportion(10_000, 580)


def test_large_counts_use_the_z_test_with_score_newcombe_and_wald_intervals() -> None:
    result = compare_proportions(CONTROL, VARIANT)
    assert result.status == OK
    assert result.test == Z_TEST
    assert result.abs_lift == approx(0.008)
    # statsmodels.stats.proportion.proportions_ztest([580, 500], [10000, 10000])
    assert result.statistic == approx(2.5028368525942595, rel=1e-12)
    assert result.p_value == approx(0.01232023220024796, rel=1e-10)
    # confint_proportions_2indep(580, 10000, 500, 10000, method="newcomb", compare="diff")
    assert result.newcombe_ci is not None
    assert result.newcombe_ci.low == approx(0.0017343251265856934, rel=1e-10)
    assert result.newcombe_ci.high == approx(0.014278224374776124, rel=1e-10)
    # confint_proportions_2indep(580, 10000, 500, 10000, method="wald", compare="diff")
    assert result.wald_ci is not None
    assert result.wald_ci.low == approx(0.0017362053185755255, rel=1e-10)
    assert result.wald_ci.high == approx(0.014263794681424476, rel=1e-10)
    # The score interval that inverts the pooled z-test: tests/score_reference.py (scipy's
    # restricted maximum likelihood) gives (0.0017378720795584934, 0.01428289759248899)
    assert result.abs_lift_ci is not None
    assert result.abs_lift_ci.low == approx(0.0017378720795584934, rel=1e-6)
    assert result.abs_lift_ci.high == approx(0.01428289759248899, rel=1e-6)
    # ... compare="ratio": (1.0326700906321593, 1.3030689239850104), minus 1
    assert result.rel_lift == approx(0.16)
    assert result.rel_lift_ci is not None
    assert result.rel_lift_ci.low == approx(0.0326700906321593, rel=1e-9)
    assert result.rel_lift_ci.high == approx(0.3030689239850104, rel=1e-9)


def test_small_counts_switch_to_fishers_exact_test() -> None:
    # Expected cells: 9 x 40 / 78 = 4.6 < 5, so Fisher's exact test.
    result = compare_proportions(Proportion(40, 2), Proportion(38, 7))
    assert result.test == FISHER
    # scipy.stats.fisher_exact([[7, 31], [2, 38]])
    assert result.p_value == approx(0.08312339792177723, rel=1e-10)
    assert result.statistic == approx(4.290322580645161)
    # confint_proportions_2indep(7, 38, 2, 40, method="newcomb", compare="diff")
    assert result.newcombe_ci is not None
    assert result.newcombe_ci.low == approx(-0.013087160035676254, rel=1e-9)
    assert result.newcombe_ci.high == approx(0.2884906640803463, rel=1e-9)
    # confint_proportions_2indep(7, 38, 2, 40, method="score", compare="ratio", correction=False)
    assert result.rel_lift_ci is not None
    assert result.rel_lift_ci.low == approx(0.9384652491199944 - 1, rel=1e-9)
    assert result.rel_lift_ci.high == approx(15.029556113110692 - 1, rel=1e-9)


def test_the_switch_is_at_an_expected_cell_of_five() -> None:
    # 10 successes in 200 per arm: every expected cell is >= 5 (10 and 190): z-test.
    assert compare_proportions(Proportion(100, 5), Proportion(100, 5)).test == Z_TEST
    # 9 successes in all: the expected cells of successes are 4.5 < 5: Fisher.
    assert compare_proportions(Proportion(100, 4), Proportion(100, 5)).test == FISHER


def test_wilson_interval_matches_statsmodels() -> None:
    interval = wilson_interval(7, 38)
    # statsmodels.stats.proportion.proportion_confint(7, 38, method="wilson")
    assert interval.low == approx(0.09221765185221271, rel=1e-10)
    assert interval.high == approx(0.3341885807113141, rel=1e-10)


def test_degenerate_proportions_carry_a_status_not_nan() -> None:
    assert compare_proportions(Proportion(0, 0), VARIANT).status == NO_DATA
    assert compare_proportions(VARIANT, Proportion(0, 0)).abs_lift is None
    zero = compare_proportions(Proportion(1000, 0), Proportion(1000, 8))
    assert zero.status == ZERO_CONTROL
    assert zero.rel_lift is None
    assert zero.rel_lift_ci is None
    assert zero.abs_lift == approx(0.008)
    both_zero = compare_proportions(Proportion(1000, 0), Proportion(1000, 0))
    assert both_zero.p_value == 1.0  # Fisher: identical tables
    assert both_zero.abs_lift_ci is not None
    assert both_zero.abs_lift_ci.contains(0.0)


def test_identical_arms_have_no_lift_and_p_one() -> None:
    result = compare_proportions(CONTROL, CONTROL)
    assert result.abs_lift == 0.0
    assert result.p_value == approx(1.0)
    assert prob_beats(CONTROL, CONTROL) == approx(0.5, abs=1e-9)


# ------------------------------------------------------------------------------------ means


def _revenue() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    a = rng.exponential(20, 300) * (rng.random(300) < 0.3)
    b = rng.exponential(24, 250) * (rng.random(250) < 0.3)
    return a, b


def test_welch_matches_scipy_on_the_raw_values() -> None:
    a, b = _revenue()
    result = welch_test(Moments(300, a.sum(), (a * a).sum()), Moments(250, b.sum(), (b * b).sum()))
    # scipy.stats.ttest_ind(b, a, equal_var=False) and its .confidence_interval()
    assert result.statistic == approx(-1.089782226323479, rel=1e-9)
    assert result.p_value == approx(0.27629066149048803, rel=1e-9)
    assert result.df == approx(545.0403514515463, rel=1e-9)
    assert result.ci is not None
    assert result.ci.low == approx(-3.602290404114644, rel=1e-9)
    assert result.ci.high == approx(1.031515694461694, rel=1e-9)
    assert result.diff == approx(b.mean() - a.mean())


def test_welch_degenerate_inputs() -> None:
    assert welch_test(Moments(1, 5.0, 25.0), Moments(10, 5.0, 25.0)).status == NO_DATA
    flat = welch_test(Moments(10, 0.0, 0.0), Moments(10, 0.0, 0.0))
    assert flat.status == ZERO_VARIANCE
    assert flat.p_value is None
    assert flat.diff == 0.0


# ----------------------------------------------------------------------------- several arms


def test_holm_matches_statsmodels() -> None:
    # statsmodels.stats.multitest.multipletests([0.01, 0.04, 0.03, 0.2], method="holm")[1]
    assert holm([0.01, 0.04, 0.03, 0.2]) == approx([0.04, 0.09, 0.09, 0.2])
    assert holm([0.3]) == [0.3]
    assert holm([0.6, 0.5]) == approx([1.0, 1.0])


def test_sample_ratio_check_matches_scipy_chisquare() -> None:
    check = sample_ratio_check([5100, 4900, 1000], [0.45, 0.45, 0.1])
    # scipy.stats.chisquare([5100, 4900, 1000], [4950, 4950, 1100])
    assert check.statistic == approx(14.141414141414142)
    assert check.p_value == approx(0.0008496321467275519, rel=1e-10)
    assert check.mismatch  # p < 0.001
    assert not sample_ratio_check([5030, 4970], [1, 1]).mismatch
    assert sample_ratio_check([0, 0], [1, 1]).status == NO_DATA


# ------------------------------------------------------------------------------------ power


def test_sample_size_matches_statsmodels_normal_ind_power() -> None:
    # NormalIndPower().solve_power(proportion_effectsize(0.06, 0.05), alpha=0.05, power=0.8)
    #   = 8142.595394436454
    assert sample_size(0.05, 0.01).control == 8143
    assert sample_size(0.05, 0.01).total == 2 * 8143
    # ... with ratio=2: 6106.946546719 in control, twice that in the variant
    unequal = sample_size(0.05, 0.01, ratio=2)
    assert (unequal.control, unequal.variant) == (6107, 12214)
    assert sample_size(0.99, 0.02).status == NOT_DETECTABLE


def test_detectable_effect_inverts_the_sample_size() -> None:
    found = detectable_effect(0.05, 8000, 8000)
    assert found.effect == approx(0.010092567104734752, rel=1e-9)
    # NormalIndPower().power(proportion_effectsize(0.05 + effect, 0.05), nobs1=8000, alpha=0.05)
    #   = 0.800000960562227 (the far tail adds 1e-6)
    assert found.effect is not None
    from statsmodels.stats.power import NormalIndPower
    from statsmodels.stats.proportion import proportion_effectsize

    power = NormalIndPower().power(proportion_effectsize(0.05 + found.effect, 0.05), 8000, 0.05)
    assert power == approx(0.8, abs=1e-5)
    assert detectable_effect(0.05, 0, 10).status == NO_DATA
    assert detectable_effect(0.9, 3, 3).status == NOT_DETECTABLE


# ------------------------------------------------------------------------------- sequential


def test_msprt_is_the_normal_mixture_likelihood_ratio() -> None:
    result = msprt(0.008, 1e-5, 0.01)
    # 1 / scipy.integrate.quad(lambda t: norm.pdf(.008, t, sqrt(1e-5)) / norm.pdf(.008, 0,
    #     sqrt(1e-5)) * norm.pdf(t, 0, .01), -.1, .1)[0] = 0.18083988134440623
    assert result.p_value == approx(0.18083988134440623, rel=1e-9)
    ratio, _ = integrate.quad(
        lambda t: (
            sps.norm.pdf(0.008, t, math.sqrt(1e-5))
            / sps.norm.pdf(0.008, 0, math.sqrt(1e-5))
            * sps.norm.pdf(t, 0, 0.01)
        ),
        -0.1,
        0.1,
        points=[0.008],
    )
    assert result.p_value == approx(1 / ratio, rel=1e-8)


def test_msprt_interval_ends_where_the_p_value_reaches_alpha() -> None:
    result = msprt(0.008, 1e-5, 0.01, alpha=0.05)
    assert result.ci is not None
    # At the interval's edge the shifted estimate is exactly at the boundary: 1/L = alpha.
    edge = msprt(result.ci.high - 0.008, 1e-5, 0.01)
    assert edge.p_value == approx(0.05, rel=1e-9)
    # The always-valid interval is wider than the fixed-horizon one.
    assert result.ci.high - 0.008 > 1.959963984540054 * math.sqrt(1e-5)


def test_running_p_values_never_rise_and_intervals_never_widen() -> None:
    looks = [
        msprt_proportions(Proportion(n, int(n * 0.05)), Proportion(n, int(n * r)), 0.01)
        for n, r in ((1000, 0.07), (2000, 0.06), (4000, 0.051), (8000, 0.058))
    ]
    out = running(looks)
    ps = [o.p_value for o in out]
    assert ps == sorted(ps, reverse=True)  # type: ignore[type-var]
    widths = [o.ci.high - o.ci.low for o in out if o.ci]
    assert widths == sorted(widths, reverse=True)
    assert msprt(0.0, 0.0, 0.01).status == ZERO_VARIANCE
    assert msprt_proportions(Proportion(0, 0), CONTROL, 0.01).status == NO_DATA


def test_msprt_keeps_false_positives_below_alpha_when_peeking_every_day() -> None:
    # A/A tests looked at 30 times each: the always-valid p crosses 0.05 in well under 5% of
    # them, where the fixed-horizon z-test looked at as often crosses far more often.
    rng = np.random.default_rng(11)
    runs, looks, per_look = 200, 20, 300
    a = rng.random((runs, looks, per_look)) < 0.1
    b = rng.random((runs, looks, per_look)) < 0.1
    ca, cb = a.sum(axis=2).cumsum(axis=1), b.sum(axis=2).cumsum(axis=1)
    sequential_hits = fixed_hits = 0
    for r in range(runs):
        ps, zs = [], []
        for k in range(looks):
            n = (k + 1) * per_look
            control, variant = Proportion(n, int(ca[r, k])), Proportion(n, int(cb[r, k]))
            ps.append(msprt_proportions(control, variant, 0.02).p_value)
            zs.append(compare_proportions(control, variant).p_value)
        sequential_hits += min(p for p in ps if p is not None) < 0.05
        fixed_hits += min(p for p in zs if p is not None) < 0.05
    assert sequential_hits / runs < 0.05
    assert fixed_hits / runs > 0.15


# ------------------------------------------------------------------------------------ bayes


def test_probability_to_beat_control_matches_numerical_integration() -> None:
    # scipy.integrate.quad(lambda p: beta.pdf(p, 581, 9421) * beta.cdf(p, 501, 9501), .03, .09)
    assert prob_beats(CONTROL, VARIANT) == approx(0.9938365832206627, rel=1e-10)
    # ... beta.pdf(p, 8, 32) * beta.cdf(p, 3, 39) over [0, 1]
    assert prob_beats(Proportion(40, 2), Proportion(38, 7)) == approx(0.9636963099910377, rel=1e-10)
    # symmetric
    assert prob_beats(VARIANT, CONTROL) == approx(1 - 0.9938365832206627, rel=1e-8)
    assert prob_beats(Proportion(0, 0), CONTROL) is None


def test_probability_to_beat_control_handles_a_million_units() -> None:
    big = prob_beats(Proportion(1_000_000, 50_000), Proportion(1_000_000, 50_400))
    # normal approximation: norm.cdf(400 / sqrt(2 * 1e6 * .05 * .95)) = 0.9068
    assert big == approx(float(sps.norm.cdf(400 / math.sqrt(2 * 1e6 * 0.05 * 0.95))), abs=2e-3)


# ------------------------------------------------------------------------------------ cuped


def _moments(y: np.ndarray, x: np.ndarray) -> CovariateMoments:
    return CovariateMoments(len(y), y.sum(), (y * y).sum(), x.sum(), (x * x).sum(), (x * y).sum())


def test_cuped_equals_the_ancova_coefficient_and_cuts_the_variance() -> None:
    rng = np.random.default_rng(3)
    n = 400
    x = rng.gamma(2.0, 30.0, 2 * n)
    treated = np.repeat([0, 1], n)
    y = 5 + 0.4 * x + 3.0 * treated + rng.normal(0, 10, 2 * n)
    result = cuped(_moments(y[:n], x[:n]), _moments(y[n:], x[n:]))
    assert result.status == OK
    # statsmodels OLS(y, add_constant(column_stack([treated, x]))).fit().params
    #   = [5.2545373, 3.52919133, 0.39446415]; bse (HC2) of the treatment = 0.72954186
    assert result.diff == approx(3.52919133, rel=1e-8)
    assert result.theta == approx(0.39446415, rel=1e-7)
    assert result.adjusted_se == approx(0.72954186, rel=5e-3)
    # Variance drops by about the squared correlation (0.7147).
    assert result.variance_reduction == approx(0.7217, abs=1e-3)
    assert result.ci is not None
    assert result.ci.contains(3.0)


def test_cuped_without_covariate_variance_says_so() -> None:
    y = np.array([0.0, 1.0, 0.0, 1.0])
    x = np.zeros(4)
    assert cuped(_moments(y, x), _moments(y, x)).status == ZERO_VARIANCE
    assert cuped(_moments(y[:1], x[:1]), _moments(y, x)).status == NO_DATA
