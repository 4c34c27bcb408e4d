"""The decision procedure: its false-decision rate and power by simulation, every arm judged,
guardrails, designs of imported experiments, and the figures new in issue 12 pinned to
statsmodels, scipy and GrowthBook's gbstats formulas."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import date, timedelta

import numpy as np
import pytest
from scipy import integrate
from scipy import stats as sps

from campaigns.experiments.analysis import analyse
from campaigns.experiments.attribution import ArmData, DailyCounts, ExperimentData
from campaigns.experiments.bayes import expected_loss
from campaigns.experiments.html import render_html
from campaigns.experiments.multiplicity import (
    BENJAMINI_HOCHBERG,
    HOLM,
    adjust,
    benjamini_hochberg,
    interval_levels,
)
from campaigns.experiments.operating import always_valid_p, pooled_z_p, simulate
from campaigns.experiments.power import sequential_power, sequential_sample_size
from campaigns.experiments.ratio import RatioMoments, ratio_test
from campaigns.experiments.report import to_json
from campaigns.experiments.score import score_interval_diff, score_interval_ratio
from campaigns.experiments.sequential import msprt, msprt_proportions
from campaigns.experiments.spec import HOLDOUT, ExperimentSpec
from campaigns.experiments.stats import GREATER, Moments, Proportion, compare_proportions
from tests.report_schema import validate_report
from tests.score_reference import score_diff_interval

approx = pytest.approx
Z95 = 1.959963984540054

SPEC = ExperimentSpec(
    name="exp",
    salt="exp",
    control="control",
    variants=("control", "b", "c"),
    shares={"control": 1 / 3, "b": 1 / 3, "c": 1 / 3},
    minimum_detectable_effect=0.01,
    baseline_rate=0.1,
)


def arm(variant: str, n: int, conversions: int) -> ArmData:
    return ArmData(variant, n, 0, conversions, Moments(n, 10.0 * conversions, 100.0 * conversions))


def daily(days: int, per_day: int, rates: dict[str, float]) -> tuple[DailyCounts, ...]:
    """Cumulative counts of each arm over ``days`` equal days at exactly ``rates``."""
    start = date(2026, 11, 1)
    return tuple(
        DailyCounts(
            start + timedelta(days=d), name, per_day * (d + 1), 0, round(rate * per_day * (d + 1))
        )
        for d in range(days)
        for name, rate in rates.items()
    )


def experiment(rates: dict[str, float], days: int = 20, per_day: int = 2_000) -> ExperimentData:
    series = daily(days, per_day, rates)
    last = {d.variant: d for d in series}
    return ExperimentData(
        "exp", {v: arm(v, last[v].exposures, last[v].conversions) for v in rates}, series
    )


# --------------------------------------------------------------------------- simulation


def test_aa_experiments_looked_at_30_times_stay_at_alpha() -> None:
    # 2,000 seeded A/A experiments, 30 looks each, up to the sequential horizon (15,804 per arm
    # at 5% +- 1 point): the always-valid rule ships or stops an arm in at most alpha of them;
    # reading the fixed-horizon p at every look would in about a quarter to a third.
    result = simulate(experiments=2000, looks=30, baseline=0.05, effect=0.01, seed=12)
    assert result.sequential_decided <= 0.05 + result.margin(0.05)
    assert result.sequential_decided == approx(0.016, abs=1e-9)  # seed 12
    assert result.fixed_decided <= 0.05 + result.margin(0.05)
    assert result.peeking_decided > 0.2


def test_with_the_registered_effect_the_power_is_the_plan() -> None:
    result = simulate(
        experiments=2000, looks=30, baseline=0.05, effect=0.01, true_effect=0.01, seed=13
    )
    # Planned at 80%: the fixed test at its horizon within simulation error, the always-valid
    # test at its (longer) horizon at least that (sequential_power is a lower bound).
    assert result.fixed_shipped == approx(0.8, abs=result.margin(0.8))
    assert result.sequential_shipped >= 0.8 - result.margin(0.8)
    assert sequential_power(0.05, 0.01, 15_804) == approx(0.8, abs=1e-3)
    assert sequential_sample_size(0.05, 0.01).control == 15_804


def test_the_vectorised_rule_is_the_reports_rule() -> None:
    rng = np.random.default_rng(5)
    n = np.array([400.0, 1_600.0, 6_400.0])
    for _ in range(20):
        control = rng.binomial(n.astype(int), 0.1).astype(float)
        variant = rng.binomial(n.astype(int), 0.12).astype(float)
        fast = always_valid_p(control, variant, n, 0.02)
        slow = [
            msprt_proportions(Proportion(int(k), int(c)), Proportion(int(k), int(v)), 0.02).p_value
            for k, c, v in zip(n, control, variant, strict=True)
        ]
        assert fast == approx(slow, rel=1e-12)
        z = pooled_z_p(control, variant, n)
        reference = [
            compare_proportions(Proportion(int(k), int(c)), Proportion(int(k), int(v))).p_value
            for k, c, v in zip(n, control, variant, strict=True)
        ]
        assert z == approx(reference, rel=1e-9)


# ---------------------------------------------------------------------- every arm judged


def test_a_significantly_worse_arm_is_always_reported() -> None:
    # The issue's case: three arms, b 0.75 points below control, c level.
    result = analyse(experiment({"control": 0.1, "b": 0.0925, "c": 0.1}), SPEC)
    b, c = result.arm("b"), result.arm("c")
    assert b.decision is not None
    assert c.decision is not None
    assert b.decision.action == "stop"
    assert c.decision.action == "inconclusive"
    assert result.verdict.startswith("b lowers conversion by 0.8 points [")
    assert ": stop it." in result.verdict


def test_when_every_arm_is_worse_each_is_stopped_worst_first() -> None:
    result = analyse(experiment({"control": 0.1, "b": 0.09, "c": 0.08}), SPEC)
    assert [a.decision.action for a in result.arms if a.decision] == ["stop", "stop"]
    assert result.verdict.index("c lowers") < result.verdict.index("b lowers")
    assert result.recommended is None


def test_winners_losers_and_not_yet_are_each_listed() -> None:
    spec = replace(
        SPEC,
        variants=("control", "b", "c", "d"),
        shares={"control": 0.25, "b": 0.25, "c": 0.25, "d": 0.25},
    )
    result = analyse(experiment({"control": 0.1, "b": 0.12, "c": 0.085, "d": 0.102}, days=10), spec)
    assert {a.variant: a.decision.action for a in result.arms if a.decision} == {
        "b": "ship",
        "c": "stop",
        "d": "continue",
    }
    assert result.verdict.startswith("b raises conversion by 2.0 points [")
    assert "c lowers conversion by 1.5 points [" in result.verdict
    assert "Not yet for d (20,000 of the " in result.verdict


def test_a_harmed_guardrail_blocks_ship() -> None:
    data = experiment({"control": 0.1, "b": 0.12})
    spec = replace(SPEC, variants=("control", "b"), shares={"control": 0.5, "b": 0.5})
    # 40 vs 90 unsubscribes in 40,000 each: proportions_ztest([90, 40], [40000, 40000],
    #   alternative="larger")[1] = 5.697385152528177e-06
    data = replace(data, guardrails={"unsubscribe_rate": {"control": 40, "b": 90}})
    result = analyse(data, spec)
    b = result.arm("b")
    assert b.decision is not None
    assert b.decision.action == "stop"
    assert b.decision.reason == "better, but it harms the unsubscribe rate"
    assert result.recommended is None
    assert result.notes == (
        "Guardrail: b raises the unsubscribe rate from 0.10% to 0.22% (p < 0.001, one-sided): "
        "it will not be shipped.",
    )
    guard = b.guardrails[0]
    assert guard.comparison.p_value == approx(5.697385152528177e-06, rel=1e-9)
    validate_report(to_json(result))


def test_fixed_designs_decide_once_with_the_data_at_the_horizon() -> None:
    # Planned 14,751 per arm (1 point over 10%); at day 8 (16,000) b is 1.0 point up.
    spec = replace(
        SPEC, decision="fixed", variants=("control", "b"), shares={"control": 0.5, "b": 0.5}
    )
    # Days 1-8: 2,000 a day per arm, b converting at 11%; days 9-16: both at 10%.
    series = []
    for day in range(16):
        n = 2_000 * (day + 1)
        early = 2_000 * min(day + 1, 8)
        extra = n - early
        series += [
            DailyCounts(date(2026, 11, 1) + timedelta(days=day), "control", n, 0, n // 10),
            DailyCounts(
                date(2026, 11, 1) + timedelta(days=day), "b", n, 0, early * 11 // 100 + extra // 10
            ),
        ]
    last = {d.variant: d for d in series}
    data = ExperimentData(
        "exp", {v: arm(v, last[v].exposures, last[v].conversions) for v in last}, tuple(series)
    )
    result = analyse(data, spec)
    assert result.horizon is not None
    assert result.horizon.day == date(2026, 11, 8)
    b = result.arm("b")
    assert b.decision is not None
    # Decided on the 16,000 per arm of the horizon look, not on all 32,000 since.
    assert b.decision.action == "ship"
    assert b.decision.lift == approx(0.01)
    assert b.p_value_adjusted == approx(
        compare_proportions(Proportion(16_000, 1_600), Proportion(16_000, 1_760)).p_value
    )


def test_a_horizon_in_days() -> None:
    spec = replace(
        SPEC,
        decision="fixed",
        horizon=timedelta(days=14),
        variants=("control", "b"),
        shares={"control": 0.5, "b": 0.5},
    )
    data = experiment({"control": 0.1, "b": 0.1}, days=5)
    result = analyse(data, spec, as_of=date(2026, 11, 10))
    assert result.horizon is not None
    assert (result.horizon.kind, result.horizon.days, result.horizon.reached) == (
        "duration",
        9,
        False,
    )
    assert "(day 9 of 14)" in result.verdict
    done = analyse(data, spec, as_of=date(2026, 11, 20))
    assert done.arm("b").decision.action == "inconclusive"  # type: ignore[union-attr]


def test_benjamini_hochberg_is_an_option() -> None:
    spec = replace(SPEC, multiplicity=BENJAMINI_HOCHBERG)
    result = analyse(experiment({"control": 0.1, "b": 0.106, "c": 0.1045}), spec)
    b, c = result.arm("b"), result.arm("c")
    assert b.primary is not None
    assert c.primary is not None
    raw = [b.primary.p_value, c.primary.p_value]
    # multipletests(raw, method="fdr_bh")[1]
    assert [b.p_value_adjusted, c.p_value_adjusted] == approx(benjamini_hochberg(raw))  # type: ignore[arg-type]
    assert to_json(result)["design"]["multiplicity"] == "benjamini-hochberg"


# ---------------------------------------------------------------------- intervals, pinned


@pytest.mark.parametrize(
    ("counts", "ratio"),
    [
        # confint_proportions_2indep(*counts, method="score", compare="ratio", correction=False)
        ((10, 40, 3, 40), (1.0844883955123366, 10.697316619371723)),
        ((244, 3577, 171, 3619), (1.1943807068729208, 1.7452873016470659)),
        ((1, 1000, 30, 900), (0.005179748521725877, 0.1731992263137454)),
    ],
)
def test_score_intervals_match_their_references(
    counts: tuple[int, int, int, int], ratio: tuple[float, float]
) -> None:
    # The difference: against scipy's restricted maximum likelihood (tests/score_reference.py;
    # statsmodels' closed form is off there by up to 1e-3, see that module).
    assert score_interval_diff(*counts, Z95, Z95) == approx(
        score_diff_interval(*counts, Z95), rel=1e-6
    )
    assert score_interval_ratio(*counts, Z95, Z95) == approx(ratio, rel=1e-9)
    # Swapping the arms negates the difference's interval exactly.
    x1, n1, x2, n2 = counts
    low, high = score_interval_diff(x2, n2, x1, n1, Z95, Z95)
    assert (-high, -low) == approx(score_interval_diff(*counts, Z95, Z95), rel=1e-9)


def test_the_issues_relative_interval_agrees_with_its_test() -> None:
    # 3/40 vs 10/40: z p = 0.034 (proportions_ztest([10, 3], [40, 40])[1] = 0.03388347680914648);
    # the delta method gave (-171%, +638%). The risk-ratio score interval excludes 0, as the test.
    result = compare_proportions(Proportion(40, 3), Proportion(40, 10))
    assert result.p_value == approx(0.03388347680914648, rel=1e-9)
    assert result.rel_lift_ci is not None
    assert result.rel_lift_ci.low == approx(0.0844883955123366, rel=1e-9)
    assert result.rel_lift_ci.high == approx(9.697316619371723, rel=1e-9)
    worse = compare_proportions(Proportion(40, 10), Proportion(40, 3))
    assert worse.rel_lift_ci is not None
    assert worse.rel_lift_ci.low > -1  # never below -100%


def test_one_sided_tests() -> None:
    result = compare_proportions(Proportion(10_000, 500), Proportion(10_000, 580), 0.05, GREATER)
    # proportions_ztest([580, 500], [10000, 10000], alternative="larger")[1]
    assert result.p_value == approx(0.01232023220024796 / 2, rel=1e-9)
    assert result.abs_lift_ci is not None
    assert math.isinf(result.abs_lift_ci.high)
    # The one-sided 95% bound is the two-sided 90% interval's lower end.
    two = compare_proportions(Proportion(10_000, 500), Proportion(10_000, 580), 0.1)
    assert two.abs_lift_ci is not None
    assert result.abs_lift_ci.low == approx(two.abs_lift_ci.low, rel=1e-9)
    # One-sided mixture: 2 Phi(d tau / sqrt(V (V + tau^2))) times the two-sided ratio.
    one, both = msprt(0.008, 1e-5, 0.01, alternative=GREATER), msprt(0.008, 1e-5, 0.01)
    shift = float(sps.norm.cdf(0.008 * 0.01 / math.sqrt(1e-5 * (1e-5 + 1e-4))))
    assert one.p_value == approx(both.p_value / (2 * shift), rel=1e-12)  # type: ignore[operator]
    # ... which is the half-normal mixture, integrated numerically
    ratio, _ = integrate.quad(
        lambda t: (
            sps.norm.pdf(0.008, t, math.sqrt(1e-5))
            / sps.norm.pdf(0.008, 0, math.sqrt(1e-5))
            * 2
            * sps.norm.pdf(t, 0, 0.01)
        ),
        0,
        0.1,
        points=[0.008],
    )
    assert one.p_value == approx(1 / ratio, rel=1e-8)


def test_multiplicity_matches_statsmodels_and_intervals_match_decisions() -> None:
    p = [0.01, 0.04, 0.03, 0.2]
    # multipletests(p, method="holm")[1] and method="fdr_bh"
    assert adjust(p, HOLM) == approx([0.04, 0.09, 0.09, 0.2])
    assert adjust(p, BENJAMINI_HOCHBERG) == approx([0.04, 0.05333333333333334, 0.05333333, 0.2])
    rng = np.random.default_rng(3)
    for _ in range(500):
        values = list(rng.random(int(rng.integers(1, 6))) ** 3)
        for method in (HOLM, BENJAMINI_HOCHBERG):
            adjusted = adjust(values, method)
            levels = interval_levels(values, 0.05, method)
            # An interval at its level excludes 0 exactly when the adjusted p is below alpha.
            assert [a < 0.05 for a in adjusted] == [
                v < level for v, level in zip(values, levels, strict=True)
            ]


def test_expected_loss_matches_gbstats_formula() -> None:
    # gbstats Beta.risk: E[max(A, B)] - (E[A], E[B]) by Gauss-Jacobi quadrature; here by scipy
    # quadrature of the same integral: E[(p_A - p_B)+] = int f_A(x) (x F_B(x) - m_B F'_B(x)) dx.
    def loss(a_a: int, b_a: int, a_b: int, b_b: int) -> float:
        def f(x: float) -> float:
            return float(
                sps.beta.pdf(x, a_a, b_a)
                * (
                    x * sps.beta.cdf(x, a_b, b_b)
                    - a_b / (a_b + b_b) * sps.beta.cdf(x, a_b + 1, b_b)
                )
            )

        return float(integrate.quad(f, 0, 1, epsabs=1e-14, epsrel=1e-12, limit=200)[0])

    result = expected_loss(Proportion(40, 2), Proportion(38, 7))
    assert result is not None
    # gbstats: Beta.risk(3, 39, 8, 32) = [0.12966446, 0.00109303] (keep control, ship variant)
    assert result.choose_variant == approx(loss(3, 39, 8, 32), rel=1e-9)
    assert result.choose_variant == approx(0.0010930279284709667, rel=1e-9)
    assert result.choose_control == approx(0.12966445649989958, rel=1e-9)
    big = expected_loss(Proportion(10_000, 500), Proportion(10_000, 580))
    assert big is not None
    assert big.choose_variant == approx(6.360517165283975e-06, rel=1e-6)
    assert big.choose_control == approx(0.0080047608371013, rel=1e-9)


def test_sequential_p_equals_gbstats_parametrisation() -> None:
    # gbstats SequentialTwoSidedTTest.pValue: 1 / (exp(rho^2 st2 / (2 (n rho^2 + 1))) /
    # sqrt(n rho^2 + 1)), st2 = d^2 n / se^2; ours with rho^2 = tau^2 / (n V).
    d, variance, tau, n = 0.008, 1e-5, 0.01, 20_000
    rho2 = tau * tau / (n * variance)
    st2 = d * d * n / variance
    tr2p1 = n * rho2 + 1
    gbstats_p = min(1.0, 1 / (math.exp(rho2 * st2 / (2 * tr2p1)) / math.sqrt(tr2p1)))
    assert msprt(d, variance, tau).p_value == approx(gbstats_p, rel=1e-12)


def test_ratio_metrics_match_the_delta_method_of_statsmodels() -> None:
    from statsmodels.stats._delta_method import NonlinearDeltaCov

    rng = np.random.default_rng(9)

    def moments(n: int, click: float, order: float) -> tuple[RatioMoments, np.ndarray]:
        y = (rng.random(n) < click).astype(float)
        x = y * (rng.random(n) < order)
        return RatioMoments(n, x.sum(), y.sum(), (x * x).sum(), (y * y).sum(), (x * y).sum()), (
            np.column_stack([x, y])
        )

    control, c_units = moments(3_000, 0.1, 0.3)
    variant, v_units = moments(3_000, 0.12, 0.4)
    result = ratio_test(control, variant)
    variances = []
    for units in (c_units, v_units):
        cov = np.cov(units.T) / len(units)
        delta = NonlinearDeltaCov(lambda m: np.array([m[0] / m[1]]), units.mean(axis=0), cov)
        variances.append(float(delta.cov()[0, 0]))
    se = math.sqrt(sum(variances))
    assert result.diff is not None
    assert result.ci is not None
    assert result.ci.high - result.diff == approx(Z95 * se, rel=1e-9)
    assert result.p_value == approx(2 * sps.norm.sf(abs(result.diff) / se), rel=1e-9)


# ------------------------------------------------------------------ designs and reports


def test_planned_shares_drive_the_sample_ratio_check() -> None:
    spec = replace(
        SPEC,
        variants=("control", "b"),
        shares={"control": 0.8, "b": 0.2},
        configured=False,
    )
    data = ExperimentData("exp", {"control": arm("control", 8_000, 800), "b": arm("b", 2_000, 200)})
    result = analyse(data, spec)
    # chisquare([8000, 2000], [8000, 2000]): a perfect 80/20 split (equal shares would be SRM)
    assert result.srm.p_value == approx(1.0)
    equal = replace(spec, shares={"control": 0.5, "b": 0.5})
    assert analyse(data, equal).srm.mismatch


def test_the_html_report_draws_only_plots_with_data() -> None:
    one_day = analyse(experiment({"control": 0.1, "b": 0.12}, days=1), SPEC)
    page = render_html(one_day)
    assert page.count("data:image/png;base64,") == 2
    assert (
        "Not drawn: every exposure so far is from one day (2026-11-01), so there is no change "
        "over time to show yet." in page
    )
    assert "control control" not in page
    several = render_html(analyse(experiment({"control": 0.1, "b": 0.12}, days=6), SPEC))
    assert several.count("data:image/png;base64,") == 3
    assert "How has each variant&#x27;s lift over control moved" in several


def test_every_report_here_validates_against_the_schema() -> None:
    cases = [
        analyse(experiment({"control": 0.1, "b": 0.0925, "c": 0.1}), SPEC),
        analyse(ExperimentData("exp", {}), SPEC),
        analyse(
            experiment({"control": 0.1, "b": 0.1, HOLDOUT: 0.09}),
            replace(
                SPEC,
                variants=("control", "b"),
                holdout=0.2,
                shares={"control": 0.4, "b": 0.4, HOLDOUT: 0.2},
            ),
        ),
        analyse(
            experiment({"control": 0.1, "b": 0.12}),
            replace(SPEC, alternative=GREATER, variants=("control", "b")),
        ),
    ]
    for case in cases:
        validate_report(to_json(case))


def test_one_sided_designs_never_stop_a_worse_arm_by_the_test() -> None:
    spec = replace(SPEC, alternative=GREATER, variants=("control", "b"))
    result = analyse(experiment({"control": 0.1, "b": 0.09}), spec)
    b = result.arm("b")
    assert b.decision is not None
    assert result.horizon is not None
    assert result.horizon.reached
    assert b.decision.action == "inconclusive"
    assert b.primary is not None
    assert b.primary.abs_lift == approx(-0.01)
