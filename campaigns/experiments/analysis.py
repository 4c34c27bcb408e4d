"""From per-arm sufficient statistics to every figure of the report, and a verdict in words.

Pure: :func:`analyse` takes :class:`~campaigns.experiments.attribution.ExperimentData` and the
spec, and returns a frozen :class:`ExperimentAnalysis`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date

from campaigns.experiments.attribution import ArmData, DailyCounts, ExperimentData
from campaigns.experiments.bayes import prob_beats
from campaigns.experiments.cuped import CupedResult, cuped
from campaigns.experiments.power import DetectableEffect, SampleSize, detectable_effect, sample_size
from campaigns.experiments.sequential import SequentialResult, msprt_proportions, running
from campaigns.experiments.spec import HOLDOUT, ExperimentSpec
from campaigns.experiments.stats import (
    Interval,
    MeanComparison,
    Proportion,
    ProportionComparison,
    SampleRatioCheck,
    compare_proportions,
    holm,
    sample_ratio_check,
    welch_test,
)

METRIC_NAMES = {"conversion": "conversion", "ctr": "click-through"}


@dataclass(frozen=True)
class LiftPoint:
    """The cumulative lift of one arm on one day, with its fixed and always-valid intervals."""

    day: date
    lift: float | None
    fixed_ci: Interval | None
    sequential_ci: Interval | None
    sequential_p: float | None


@dataclass(frozen=True)
class ArmResult:
    """One arm's figures; comparisons are against control on the primary metric."""

    variant: str
    exposures: int
    clicks: int
    conversions: int
    is_control: bool
    primary: ProportionComparison | None = None
    p_value_adjusted: float | None = None
    prob_beat_control: float | None = None
    sequential: SequentialResult | None = None
    revenue: MeanComparison | None = None
    cuped: CupedResult | None = None
    cuped_revenue: CupedResult | None = None
    detectable: DetectableEffect | None = None
    lift_over_time: tuple[LiftPoint, ...] = ()
    revenue_total: float = 0.0
    #: Secondary rate metrics (``ctr`` or ``conversion``) against control, unadjusted.
    secondary: tuple[tuple[str, ProportionComparison], ...] = ()

    @property
    def ctr(self) -> float | None:
        return self.clicks / self.exposures if self.exposures else None

    @property
    def conversion_rate(self) -> float | None:
        return self.conversions / self.exposures if self.exposures else None

    @property
    def revenue_per_exposure(self) -> float | None:
        return self.revenue_total / self.exposures if self.exposures else None


@dataclass(frozen=True)
class ExperimentAnalysis:
    """Every figure of an experiment's report."""

    experiment: str
    control: str
    primary_metric: str
    alpha: float
    minimum_detectable_effect: float
    arms: tuple[ArmResult, ...]
    srm: SampleRatioCheck
    needed: SampleSize
    verdict: str
    notes: tuple[str, ...] = field(default_factory=tuple)
    configured: bool = True
    #: The arms of ``srm.observed`` and ``srm.expected``, in that order.
    split_arms: tuple[str, ...] = ()

    def arm(self, variant: str) -> ArmResult:
        return next(a for a in self.arms if a.variant == variant)


def _points(value: float) -> str:
    return f"{100 * value:.1f}"


def format_p(p: float | None) -> str:
    if p is None:
        return "n/a"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def _over_time(
    daily: tuple[DailyCounts, ...], control: str, variant: str, spec: ExperimentSpec
) -> tuple[LiftPoint, ...]:
    days = sorted({d.day for d in daily})
    latest: dict[str, DailyCounts] = {}
    looks: list[tuple[date, ProportionComparison, SequentialResult]] = []
    by_day: dict[date, list[DailyCounts]] = {}
    for d in daily:
        by_day.setdefault(d.day, []).append(d)
    for day in days:
        for d in by_day[day]:
            latest[d.variant] = d
        if control not in latest or variant not in latest:
            continue
        hits = "clicks" if spec.primary_metric == "ctr" else "conversions"
        c, v = latest[control], latest[variant]
        pc = Proportion(c.exposures, getattr(c, hits))
        pv = Proportion(v.exposures, getattr(v, hits))
        fixed = compare_proportions(pc, pv, spec.alpha)
        looks.append(
            (day, fixed, msprt_proportions(pc, pv, spec.minimum_detectable_effect, spec.alpha))
        )
    always = running(look[2] for look in looks)
    return tuple(
        LiftPoint(day, fixed.abs_lift, fixed.abs_lift_ci, seq.ci, seq.p_value)
        for (day, fixed, _), seq in zip(looks, always, strict=True)
    )


def analyse(data: ExperimentData, spec: ExperimentSpec) -> ExperimentAnalysis:
    """All figures for ``data`` with ``spec``'s control, metric, alpha and effect size."""
    metric = spec.primary_metric
    order = [a for a in (*spec.arms,) if a in data.arms]
    order += sorted(a for a in data.arms if a not in order)
    observed = [data.arms[a].exposures if a in data.arms else 0 for a in spec.arms]
    srm = sample_ratio_check(observed, [spec.shares[a] for a in spec.arms])
    control_arm = data.arms.get(spec.control)
    ratio = 1.0
    if spec.control != HOLDOUT and len(spec.variants) > 1:
        others = [spec.shares[v] for v in spec.variants if v != spec.control]
        ratio = min(others) / spec.shares[spec.control]
    needed = sample_size(
        spec.baseline_rate, spec.minimum_detectable_effect, spec.alpha, spec.power, ratio
    )

    compared = [a for a in order if a != spec.control and control_arm is not None]
    results: dict[str, ArmResult] = {}
    for name in order:
        arm = data.arms[name]
        results[name] = _arm(arm, control_arm if name in compared else None, data, spec)
    family = [a for a in compared if a != HOLDOUT and results[a].primary is not None]
    fixed_p = [results[a].primary.p_value for a in family]  # type: ignore[union-attr]
    seq_p = [results[a].sequential.p_value for a in family]  # type: ignore[union-attr]
    if all(p is not None for p in fixed_p) and len(family) > 1:
        for name, adjusted in zip(family, holm(fixed_p), strict=True):  # type: ignore[arg-type]
            results[name] = _replace(results[name], p_value_adjusted=adjusted)
    seq_adjusted: dict[str, float | None] = dict(zip(family, seq_p, strict=True))
    if all(p is not None for p in seq_p) and len(family) > 1:
        seq_adjusted = dict(zip(family, holm(seq_p), strict=True))  # type: ignore[arg-type]
    arms = tuple(results[a] for a in order)
    verdict = _verdict(spec, arms, family, srm, needed, seq_adjusted, data)
    notes = []
    if HOLDOUT in results and control_arm is not None and spec.control != HOLDOUT:
        primary = results[HOLDOUT].primary
        if primary is not None and primary.abs_lift is not None and primary.abs_lift_ci:
            ci = primary.abs_lift_ci
            notes.append(
                f"Sending {spec.control!r} at all changes {METRIC_NAMES[metric]} by "
                f"{100 * -primary.abs_lift:+.1f} points [{100 * -ci.high:+.1f}, "
                f"{100 * -ci.low:+.1f}] against the holdout, {format_p(primary.p_value)}."
            )
    return ExperimentAnalysis(
        experiment=spec.name,
        control=spec.control,
        primary_metric=metric,
        alpha=spec.alpha,
        minimum_detectable_effect=spec.minimum_detectable_effect,
        arms=arms,
        srm=srm,
        needed=needed,
        verdict=verdict,
        notes=tuple(notes),
        configured=spec.configured,
        split_arms=spec.arms,
    )


def _replace(result: ArmResult, **changes: object) -> ArmResult:
    return replace(result, **changes)  # type: ignore[arg-type]


def _arm(
    arm: ArmData, control: ArmData | None, data: ExperimentData, spec: ExperimentSpec
) -> ArmResult:
    base = ArmResult(
        variant=arm.variant,
        exposures=arm.exposures,
        clicks=arm.clicks,
        conversions=arm.conversions,
        is_control=arm.variant == spec.control,
        revenue_total=arm.revenue.total,
    )
    if control is None:
        return base
    metric = spec.primary_metric
    pc, pv = control.metric(metric), arm.metric(metric)
    primary = compare_proportions(pc, pv, spec.alpha)
    lift = _over_time(data.daily, spec.control, arm.variant, spec)
    sequential = (
        SequentialResult(
            status="ok",
            diff=primary.abs_lift,
            p_value=lift[-1].sequential_p,
            ci=lift[-1].sequential_ci,
        )
        if lift and lift[-1].sequential_p is not None
        else msprt_proportions(pc, pv, spec.minimum_detectable_effect, spec.alpha)
    )
    adjusted_cuped = None
    if metric == "conversion" and control.cuped_conversion and arm.cuped_conversion:
        adjusted_cuped = cuped(control.cuped_conversion, arm.cuped_conversion, spec.alpha)
    return _replace(
        base,
        primary=primary,
        p_value_adjusted=primary.p_value,
        prob_beat_control=prob_beats(pc, pv),
        sequential=sequential,
        revenue=welch_test(control.revenue, arm.revenue, spec.alpha),
        cuped=adjusted_cuped,
        cuped_revenue=(
            cuped(control.cuped_revenue, arm.cuped_revenue, spec.alpha)
            if control.cuped_revenue and arm.cuped_revenue
            else None
        ),
        detectable=detectable_effect(
            spec.baseline_rate, control.exposures, arm.exposures, spec.alpha, spec.power
        ),
        lift_over_time=lift,
        secondary=tuple(
            (name, compare_proportions(control.metric(name), arm.metric(name), spec.alpha))
            for name in spec.secondary_metrics
            if name in METRIC_NAMES and name != metric
        ),
    )


def _verdict(
    spec: ExperimentSpec,
    arms: tuple[ArmResult, ...],
    family: list[str],
    srm: SampleRatioCheck,
    needed: SampleSize,
    seq_adjusted: dict[str, float | None],
    data: ExperimentData,
) -> str:
    metric = METRIC_NAMES[spec.primary_metric]
    if not data.arms:
        return "No exposures yet: nothing to judge."
    if spec.control not in data.arms:
        return f"No exposures in the control arm {spec.control!r} yet: nothing to compare with."
    if srm.mismatch:
        return (
            f"Sample ratio mismatch ({format_p(srm.p_value)}): the split does not match the "
            "configured weights, so these results cannot be trusted; find the cause before "
            "reading them."
        )
    if not family:
        return "No variant to compare with control yet."
    by_name = {a.variant: a for a in arms}
    smallest = min(by_name[a].exposures for a in (*family, spec.control))
    complete = needed.control is not None and smallest >= needed.control

    decided: list[tuple[ArmResult, Interval, float, str]] = []
    for name in family:
        arm = by_name[name]
        primary = arm.primary
        assert primary is not None
        if complete and arm.p_value_adjusted is not None and arm.p_value_adjusted < spec.alpha:
            assert primary.abs_lift_ci is not None
            decided.append((arm, primary.abs_lift_ci, arm.p_value_adjusted, "p"))
        else:
            seq_p = seq_adjusted.get(name)
            if seq_p is not None and seq_p < spec.alpha and arm.sequential is not None:
                assert arm.sequential.ci is not None
                decided.append((arm, arm.sequential.ci, seq_p, "always-valid p"))

    def figures(arm: ArmResult, ci: Interval, p: float, label: str) -> str:
        assert arm.primary is not None
        assert arm.primary.abs_lift is not None
        shown = format_p(p).replace("p", label, 1)
        return (
            f"{_points(abs(arm.primary.abs_lift))} points "
            f"[{_points(ci.low)}, {_points(ci.high)}], {shown}"
        )

    winners = [d for d in decided if (d[0].primary and (d[0].primary.abs_lift or 0) > 0)]
    if winners:
        best = max(winners, key=lambda d: d[0].primary.abs_lift or 0)  # type: ignore[union-attr]
        name = best[0].variant
        return f"Variant {name} raises {metric} by {figures(*best)}: keep {name}."
    if decided and len(decided) == len(family):
        worst = decided[0]
        return (
            f"Variant {worst[0].variant} lowers {metric} by {figures(*worst)}: keep {spec.control}."
        )
    leader = max(
        (by_name[a] for a in family),
        key=lambda a: a.primary.abs_lift or 0,  # type: ignore[union-attr]
    )
    assert leader.primary is not None
    assert leader.primary.abs_lift_ci is not None
    assert leader.primary.abs_lift is not None
    ci = leader.primary.abs_lift_ci
    sofar = (
        f"{leader.variant} {'+' if leader.primary.abs_lift >= 0 else '-'}"
        f"{_points(abs(leader.primary.abs_lift))} points [{_points(ci.low)}, {_points(ci.high)}], "
        f"{format_p(leader.p_value_adjusted)}"
    )
    if complete:
        return (
            f"No variant changes {metric} detectably after the planned {needed.control:,} "
            f"exposures per arm (best: {sofar}): keep {spec.control}."
        )
    planned = f"{needed.control:,}" if needed.control is not None else "enough"
    return (
        f"Not yet: {smallest:,} of the {planned} exposures per arm needed to detect "
        f"{_points(spec.minimum_detectable_effect)} points; so far {sofar}."
    )
