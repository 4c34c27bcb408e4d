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


def test_three_arms_are_holm_adjusted_and_the_best_is_kept() -> None:
    result = analyse(
        data(arm("control", 10_000, 500), arm("b", 10_000, 600), arm("c", 10_000, 540)), SPEC
    )
    b, c = result.arm("b"), result.arm("c")
    assert b.primary is not None
    assert c.primary is not None
    assert [b.p_value_adjusted, c.p_value_adjusted] == pytest.approx(
        holm([b.primary.p_value, c.primary.p_value])  # type: ignore[list-item]
    )
    assert b.p_value_adjusted == pytest.approx(0.0038493745019245167, rel=1e-9)
    # 10,000 per arm >= the 8,143 needed for 1 point: the fixed-horizon p decides.
    # multipletests([0.0019246872509622584, 0.20269489163549637], method="holm")[1][0]
    #   = 0.0038493745019245167 (the p-values of proportions_ztest for b and c)
    assert (
        result.verdict == "Variant b raises conversion by 1.0 points [0.4, 1.6], p = 0.004: keep b."
    )
    assert result.needed.control == 8143


def test_short_samples_say_not_yet() -> None:
    # Holm over the proportions_ztest p-values 0.39704 and 0.71353: 0.79409 for both
    result = analyse(
        data(arm("control", 2_000, 100), arm("b", 2_000, 112), arm("c", 2_000, 95)), SPEC
    )
    assert result.verdict == (
        "Not yet: 2,000 of the 8,143 exposures per arm needed to detect 1.0 points; so far b "
        "+0.6 points [-0.8, 2.0], p = 0.794."
    )


def test_a_complete_sample_without_a_difference_keeps_control() -> None:
    result = analyse(
        data(arm("control", 9_000, 450), arm("b", 9_000, 460), arm("c", 9_000, 440)), SPEC
    )
    assert result.verdict.startswith(
        "No variant changes conversion detectably after the planned 8,143 exposures per arm "
        "(best: b +0.1 points"
    )
    assert result.verdict.endswith(": keep control.")


def test_a_worse_variant_keeps_control() -> None:
    two = replace(SPEC, variants=("control", "b"), shares={"control": 0.5, "b": 0.5})
    result = analyse(data(arm("control", 10_000, 600), arm("b", 10_000, 480)), two)
    assert (
        result.verdict
        == "Variant b lowers conversion by 1.2 points [-1.8, -0.6], p < 0.001: keep control."
    )


def test_a_sample_ratio_mismatch_overrides_everything() -> None:
    result = analyse(
        data(arm("control", 10_000, 500), arm("b", 10_600, 700), arm("c", 10_000, 500)), SPEC
    )
    assert result.srm.mismatch
    assert result.verdict == (
        "Sample ratio mismatch (p < 0.001): the split does not match the configured weights, so "
        "these results cannot be trusted; find the cause before reading them."
    )
    html = render_html(result)
    assert '<p class="srm bad">Sample ratio mismatch: p &lt; 0.001' in html
    assert to_json(result)["srm_p_value"] < 0.001


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
    assert result.verdict.startswith("Variant b raises conversion by 4.0 points [")
    assert "always-valid p" in result.verdict


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
    assert result.verdict.startswith("Not yet: 60 of the 8,143")
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
