"""From per-arm sums to the report's figures and its verdict (pure, no store)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from campaigns.experiments.analysis import analyse
from campaigns.experiments.attribution import ArmData, DailyCounts, ExperimentData
from campaigns.experiments.html import render_html
from campaigns.experiments.report import to_json
from campaigns.experiments.spec import HOLDOUT, ExperimentSpec
from campaigns.experiments.stats import FISHER, Moments, holm

SPEC = ExperimentSpec(
    name="exp",
    salt="exp",
    control="control",
    variants=("control", "b", "c"),
    shares={"control": 1 / 3, "b": 1 / 3, "c": 1 / 3},
    minimum_detectable_effect=0.01,
    baseline_rate=0.05,
)


def arm(variant: str, n: int, conversions: int, clicks: int = 0) -> ArmData:
    return ArmData(
        variant, n, clicks, conversions, Moments(n, 10.0 * conversions, 100.0 * conversions)
    )


def data(*arms: ArmData, daily: tuple[DailyCounts, ...] = ()) -> ExperimentData:
    return ExperimentData("exp", {a.variant: a for a in arms}, daily)


FIXED_SPEC = replace(SPEC, decision="fixed")


def test_three_arms_are_holm_adjusted_and_the_best_is_shipped_at_the_horizon() -> None:
    result = analyse(
        data(arm("control", 10_000, 500), arm("b", 10_000, 600), arm("c", 10_000, 540)),
        FIXED_SPEC,
    )
    b, c = result.arm("b"), result.arm("c")
    assert b.primary is not None
    assert c.primary is not None
    assert [b.p_value_adjusted, c.p_value_adjusted] == pytest.approx(
        holm([b.primary.p_value, c.primary.p_value])  # type: ignore[list-item]
    )
    # multipletests([0.0019246872509622584, 0.20269489163549637], method="holm")[1][0]
    #   = 0.0038493745019245167 (the p-values of proportions_ztest for b and c)
    assert b.p_value_adjusted == pytest.approx(0.0038493745019245167, rel=1e-9)
    # Holm tested b at alpha / 2: its interval is at 97.5%, and clears 0 as its test does.
    # tests/score_reference.py: score_diff_interval(600, 10000, 500, 10000, norm.isf(0.0125))
    #   = (0.0027788920714312887, 0.017254183561064087)
    assert b.abs_lift_ci_adjusted is not None
    assert b.abs_lift_ci_adjusted.low == pytest.approx(0.0027788920714312887, rel=1e-6)
    assert b.abs_lift_ci_adjusted.high == pytest.approx(0.017254183561064087, rel=1e-6)
    # 10,000 per arm >= the 8,143 a fixed design needs for 1 point: decided, once.
    assert result.needed.control == 8143
    assert b.decision is not None
    assert c.decision is not None
    assert (b.decision.action, c.decision.action) == ("ship", "inconclusive")
    assert result.recommended == "b"
    assert result.verdict == (
        "b raises conversion by 1.0 points [0.3, 1.7], p = 0.004: ship it. No detectable change "
        "for c by the horizon (best: c +0.4 points [-0.2, 1.0], p = 0.203)."
    )


def test_the_fixed_test_does_not_decide_before_the_horizon() -> None:
    # The same significant b, at 5,000 per arm: a fixed design waits for its 8,143.
    result = analyse(
        data(arm("control", 5_000, 250), arm("b", 5_000, 330), arm("c", 5_000, 260)), FIXED_SPEC
    )
    b = result.arm("b")
    assert b.p_value_adjusted is not None
    assert b.p_value_adjusted < 0.05
    assert b.decision is not None
    assert b.decision.action == "continue"
    assert result.verdict.startswith(
        "Not yet for b, c (5,000 of the 8,143 exposures per arm planned to detect 1.0 points)"
    )


def test_a_sequential_design_plans_a_longer_horizon_and_says_not_yet() -> None:
    result = analyse(
        data(arm("control", 2_000, 100), arm("b", 2_000, 112), arm("c", 2_000, 95)), SPEC
    )
    # The always-valid test needs 15,804 per arm for 80% power at 1 point over 5%
    # (sequential_sample_size; simulated power in tests/test_experiment_decisions.py).
    assert result.needed.control == 15804
    assert result.verdict == (
        "Not yet for b, c (2,000 of the 15,804 exposures per arm planned to detect 1.0 points); "
        "so far b +0.6 points [-1.7, 2.9], always-valid p = 1.000."
    )
    assert {a.decision.action for a in result.arms if a.decision} == {"continue"}


def test_a_complete_sample_without_a_difference_is_inconclusive() -> None:
    result = analyse(
        data(arm("control", 9_000, 450), arm("b", 9_000, 460), arm("c", 9_000, 440)), FIXED_SPEC
    )
    assert result.verdict.startswith("No detectable change for b, c by the horizon (best: b +0.1")
    assert result.verdict.endswith(": keep control.")
    assert result.recommended is None


def test_a_worse_variant_is_stopped() -> None:
    two = replace(SPEC, variants=("control", "b"), shares={"control": 0.5, "b": 0.5})
    result = analyse(data(arm("control", 10_000, 600), arm("b", 10_000, 480)), two)
    assert result.verdict == (
        "b lowers conversion by 1.2 points [-2.2, -0.2], always-valid p = 0.005: stop it."
    )
    assert result.arm("b").decision.action == "stop"  # type: ignore[union-attr]


def test_a_sample_ratio_mismatch_overrides_everything() -> None:
    result = analyse(
        data(arm("control", 10_000, 500), arm("b", 10_600, 700), arm("c", 10_000, 500)), SPEC
    )
    assert result.srm.mismatch
    assert result.verdict == (
        "Sample ratio mismatch (p < 0.001): the split does not match the planned shares, so "
        "these results cannot be trusted; find the cause before reading them."
    )
    assert {a.decision.action for a in result.arms if a.decision} == {"inconclusive"}
    html = render_html(result)
    assert '<p class="srm bad">Sample ratio mismatch: p &lt; 0.001' in html
    srm = to_json(result)["srm"]
    assert srm["p_value"] < 0.001
    assert srm["mismatch"] is True


def test_the_always_valid_p_can_call_it_early() -> None:
    two = replace(SPEC, variants=("control", "b"), shares={"control": 0.5, "b": 0.5})
    daily = (
        DailyCounts(date(2026, 11, 1), "control", 1_000, 0, 40),
        DailyCounts(date(2026, 11, 1), "b", 1_000, 0, 90),
        DailyCounts(date(2026, 11, 2), "control", 2_000, 0, 90),
        DailyCounts(date(2026, 11, 2), "b", 2_000, 0, 170),
    )
    result = analyse(data(arm("control", 2_000, 90), arm("b", 2_000, 170), daily=daily), two)
    b = result.arm("b")
    assert b.sequential is not None
    assert b.sequential.p_value is not None
    assert b.sequential.p_value < 0.05
    assert len(b.lift_over_time) == 2
    # The running minimum: the second look's p is never above the first's.
    assert b.lift_over_time[1].sequential_p <= b.lift_over_time[0].sequential_p  # type: ignore[operator]
    assert result.verdict.startswith("b raises conversion by 4.0 points [")
    assert "always-valid p" in result.verdict
    assert b.decision is not None
    assert b.decision.action == "ship"
    assert b.decision.basis == "always-valid p (mixture SPRT)"


def test_click_through_as_primary_metric_and_small_counts() -> None:
    ctr = replace(
        SPEC, primary_metric="ctr", variants=("control", "b"), shares={"control": 0.5, "b": 0.5}
    )
    result = analyse(data(arm("control", 60, 0, clicks=1), arm("b", 60, 0, clicks=6)), ctr)
    b = result.arm("b")
    assert b.primary is not None
    assert b.primary.test == FISHER
    assert b.primary.abs_lift == pytest.approx(5 / 60)
    # scipy.stats.fisher_exact([[6, 54], [1, 59]]).pvalue
    assert b.primary.p_value == pytest.approx(0.11397468686471243, rel=1e-9)
    assert result.verdict.startswith("Not yet for b (60 of the 15,804")
    assert "click-through" in render_html(result)
    # conversion is a secondary metric here: compared, not adjusted, not in the verdict.
    with_secondary = replace(ctr, secondary_metrics=("revenue_per_exposure", "conversion"))
    result = analyse(
        data(arm("control", 600, 30, clicks=1), arm("b", 600, 45, clicks=6)), with_secondary
    )
    ((name, comparison),) = result.arm("b").secondary
    assert name == "conversion"
    assert comparison.abs_lift == pytest.approx(15 / 600)
    # statsmodels proportions_ztest([45, 30], [600, 600])[1]
    assert comparison.p_value == pytest.approx(0.07363827012030272, rel=1e-9)
    assert "<h2>Secondary metrics (not adjusted)</h2>" in render_html(result)


def test_holdout_and_missing_control() -> None:
    spec = replace(
        SPEC,
        variants=("control", "b"),
        holdout=0.1,
        shares={"control": 0.45, "b": 0.45, HOLDOUT: 0.1},
    )
    result = analyse(
        data(arm("control", 9_000, 540), arm("b", 9_000, 630), arm(HOLDOUT, 2_000, 80)), spec
    )
    assert result.notes == (
        "Sending 'control' at all changes conversion by +2.0 points [+0.9, +2.9] against the "
        "holdout, p < 0.001.",  # proportions_ztest([540, 80], [9000, 2000])[1] = 0.00045
    )
    # The holdout is not in the Holm family: b's p is unadjusted.
    assert result.arm("b").p_value_adjusted == result.arm("b").primary.p_value  # type: ignore[union-attr]
    nothing = analyse(data(arm("b", 10, 1)), spec)
    assert (
        nothing.verdict == "No exposures in the control arm 'control' yet: nothing to compare with."
    )
