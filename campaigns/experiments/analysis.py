"""From per-arm sufficient statistics to every figure of the report, a decision per arm, and the
verdict in words.

Pure: :func:`analyse` takes :class:`~campaigns.experiments.attribution.ExperimentData` and the
spec, and returns a frozen :class:`ExperimentAnalysis`. The decision rule is in :mod:`.decision`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import date

from campaigns.experiments.attribution import ArmData, DailyCounts, ExperimentData
from campaigns.experiments.bayes import ExpectedLoss, expected_loss, prob_beats
from campaigns.experiments.cuped import CupedResult, cuped
from campaigns.experiments.decision import (
    CONTINUE,
    FIXED,
    INCONCLUSIVE,
    SHIP,
    STOP,
    ArmDecision,
    decide_arm,
)
from campaigns.experiments.exposures import DeliveryCounts
from campaigns.experiments.guardrails import METRIC_LABELS
from campaigns.experiments.multiplicity import adjust, interval_levels
from campaigns.experiments.power import (
    NOT_DETECTABLE,
    DetectableEffect,
    SampleSize,
    detectable_effect,
    sample_size,
    sequential_sample_size,
)
from campaigns.experiments.ratio import RatioComparison, ratio_test
from campaigns.experiments.sequential import SequentialResult, msprt_proportions, running
from campaigns.experiments.spec import HOLDOUT, ExperimentSpec
from campaigns.experiments.stats import (
    GREATER,
    OK,
    Interval,
    MeanComparison,
    Proportion,
    ProportionComparison,
    SampleRatioCheck,
    compare_proportions,
    sample_ratio_check,
    score_intervals,
    welch_test,
)

METRIC_NAMES = {"conversion": "conversion", "ctr": "click-through"}

#: The sample-ratio check was not run: the design gives no planned shares.
NOT_CHECKED = "not_checked"


@dataclass(frozen=True)
class LiftPoint:
    """The cumulative lift of one arm on one day, with its fixed and always-valid intervals."""

    day: date
    lift: float | None
    fixed_ci: Interval | None
    sequential_ci: Interval | None
    sequential_p: float | None


@dataclass(frozen=True)
class GuardrailResult:
    """A guardrail rate of a variant against control's, tested one-sided for harm."""

    metric: str
    control: Proportion
    variant: Proportion
    comparison: ProportionComparison
    harmed: bool


@dataclass(frozen=True)
class ArmResult:
    """One arm's figures; comparisons are against control on the primary metric."""

    variant: str
    exposures: int
    clicks: int
    conversions: int
    is_control: bool
    primary: ProportionComparison | None = None
    #: The fixed-horizon p adjusted across variants (Holm or Benjamini-Hochberg).
    p_value_adjusted: float | None = None
    #: The primary intervals at the level matching the adjustment.
    abs_lift_ci_adjusted: Interval | None = None
    rel_lift_ci_adjusted: Interval | None = None
    prob_beat_control: float | None = None
    expected_loss: ExpectedLoss | None = None
    #: Always-valid p and confidence sequence (at alpha), carried over every look.
    sequential: SequentialResult | None = None
    #: The always-valid p adjusted across variants, and its sequence at the matching level.
    sequential_p_adjusted: float | None = None
    sequential_ci_adjusted: Interval | None = None
    revenue: MeanComparison | None = None
    cuped: CupedResult | None = None
    cuped_revenue: CupedResult | None = None
    detectable: DetectableEffect | None = None
    lift_over_time: tuple[LiftPoint, ...] = ()
    revenue_total: float = 0.0
    #: Secondary rate metrics (``ctr`` or ``conversion``) against control, unadjusted.
    secondary: tuple[tuple[str, ProportionComparison], ...] = ()
    orders_per_clicker: RatioComparison | None = None
    guardrails: tuple[GuardrailResult, ...] = ()
    decision: ArmDecision | None = None
    delivery: DeliveryCounts | None = None

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
class Horizon:
    """Where the experiment stands against its pre-registered horizon.

    ``planned_per_arm`` is the sample size per arm from the design (None when the design does
    not give baseline and effect, or a duration is the horizon); ``reached_per_arm`` the smallest
    arm so far. ``day`` is the look at which the horizon was reached.
    """

    kind: str  # "sample_size", "duration" or "none"
    planned_per_arm: int | None
    reached_per_arm: int
    reached: bool
    day: date | None = None
    planned_days: int | None = None
    days: int | None = None


@dataclass(frozen=True)
class ExperimentAnalysis:
    """Every figure of an experiment's report."""

    experiment: str
    control: str
    primary_metric: str
    alpha: float
    minimum_detectable_effect: float | None
    arms: tuple[ArmResult, ...]
    srm: SampleRatioCheck
    needed: SampleSize
    verdict: str
    notes: tuple[str, ...] = field(default_factory=tuple)
    configured: bool = True
    #: The arms of ``srm.observed`` and ``srm.expected``, in that order.
    split_arms: tuple[str, ...] = ()
    spec: ExperimentSpec | None = None
    horizon: Horizon | None = None
    #: The arm to ship, if any (the winner with the largest lift).
    recommended: str | None = None

    def arm(self, variant: str) -> ArmResult:
        return next(a for a in self.arms if a.variant == variant)


def _points(value: float) -> str:
    return f"{100 * value:.1f}"


def format_p(p: float | None) -> str:
    if p is None:
        return "n/a"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def _hits(spec: ExperimentSpec) -> str:
    return "clicks" if spec.primary_metric == "ctr" else "conversions"


def _looks(
    daily: tuple[DailyCounts, ...], control: str, variant: str, spec: ExperimentSpec
) -> list[tuple[date, Proportion, Proportion]]:
    """The cumulative (control, variant) proportions at each day both arms have units."""
    latest: dict[str, DailyCounts] = {}
    by_day: dict[date, list[DailyCounts]] = {}
    for d in daily:
        by_day.setdefault(d.day, []).append(d)
    looks = []
    for day in sorted(by_day):
        for d in by_day[day]:
            latest[d.variant] = d
        if control not in latest or variant not in latest:
            continue
        c, v = latest[control], latest[variant]
        looks.append(
            (
                day,
                Proportion(c.exposures, getattr(c, _hits(spec))),
                Proportion(v.exposures, getattr(v, _hits(spec))),
            )
        )
    return looks


def _sequential(
    looks: list[tuple[date, Proportion, Proportion]], spec: ExperimentSpec, level: float
) -> list[SequentialResult]:
    """The always-valid figures after each look, at ``level``."""
    tau = spec.minimum_detectable_effect
    assert tau is not None
    return running(msprt_proportions(c, v, tau, level, spec.alternative) for _, c, v in looks)


def _horizon(
    spec: ExperimentSpec,
    data: ExperimentData,
    family: list[str],
    needed: SampleSize,
    as_of: date | None,
) -> Horizon:
    arms = [a for a in (*family, spec.control) if a in data.arms]
    smallest = min((data.arms[a].exposures for a in arms), default=0)
    days = sorted({d.day for d in data.daily})
    if spec.horizon is not None:
        planned_days = max(spec.horizon.days, 1)
        if not days:
            return Horizon("duration", None, smallest, False, planned_days=planned_days, days=0)
        today = as_of or days[-1]
        elapsed = (today - days[0]).days
        end = days[0].toordinal() + planned_days
        reached_day = max((d for d in days if d.toordinal() <= end), default=None)
        return Horizon(
            "duration",
            None,
            smallest,
            elapsed >= planned_days,
            reached_day if elapsed >= planned_days else None,
            planned_days,
            elapsed,
        )
    if needed.control is None:
        return Horizon("none", None, smallest, False)
    planned = needed.control
    reached_day = None
    running_units: dict[str, int] = {}
    for d in sorted(data.daily, key=lambda d: d.day):
        running_units[d.variant] = d.exposures
        if reached_day is None and all(running_units.get(a, 0) >= planned for a in arms):
            reached_day = d.day
    reached = smallest >= planned
    return Horizon("sample_size", planned, smallest, reached, reached_day if reached else None)


def _design_needed(spec: ExperimentSpec) -> SampleSize:
    if spec.baseline_rate is None or spec.minimum_detectable_effect is None:
        return SampleSize(status=NOT_DETECTABLE)
    ratio = 1.0
    if spec.control != HOLDOUT and len(spec.variants) > 1:
        others = [spec.shares[v] for v in spec.variants if v != spec.control]
        ratio = min(others) / spec.shares[spec.control]
    fixed = sample_size(
        spec.baseline_rate, spec.minimum_detectable_effect, spec.alpha, spec.power, ratio
    )
    if spec.decision == FIXED or fixed.control is None or fixed.variant is None:
        return fixed
    # A sequential design's horizon: where the always-valid test has the planned power (equal
    # arms), scaled to this split as the fixed size is.
    equal = sample_size(spec.baseline_rate, spec.minimum_detectable_effect, spec.alpha, spec.power)
    sequential = sequential_sample_size(
        spec.baseline_rate, spec.minimum_detectable_effect, spec.alpha, spec.power
    )
    assert equal.control is not None
    assert sequential.control is not None
    factor = sequential.control / equal.control
    return SampleSize(OK, math.ceil(fixed.control * factor), math.ceil(fixed.variant * factor))


def analyse(
    data: ExperimentData, spec: ExperimentSpec, as_of: date | None = None
) -> ExperimentAnalysis:
    """All figures for ``data`` with ``spec``'s control, metric, alpha and effect size, and a
    decision per arm; ``as_of`` is today (for a horizon in days; default: the last look)."""
    order = [a for a in (*spec.arms,) if a in data.arms]
    order += sorted(a for a in data.arms if a not in order)
    observed = [data.arms[a].exposures if a in data.arms else 0 for a in spec.arms]
    srm = sample_ratio_check(observed, [spec.shares[a] for a in spec.arms])
    if not spec.shares_given:
        srm = SampleRatioCheck(NOT_CHECKED, srm.observed, ())
    control_arm = data.arms.get(spec.control)
    needed = _design_needed(spec)

    compared = [a for a in order if a != spec.control and control_arm is not None]
    results: dict[str, ArmResult] = {}
    for name in order:
        arm = data.arms[name]
        results[name] = _arm(arm, control_arm if name in compared else None, data, spec)
    family = [a for a in compared if a != HOLDOUT and results[a].primary is not None]
    horizon = _horizon(spec, data, family, needed, as_of)
    _judge(results, family, spec, data, srm, horizon)
    arms = tuple(results[a] for a in order)
    winners = [a for a in arms if a.decision is not None and a.decision.action == SHIP]
    recommended = (
        max(winners, key=lambda a: a.primary.abs_lift or 0).variant  # type: ignore[union-attr]
        if winners
        else None
    )
    verdict = _verdict(spec, arms, srm, horizon, data, recommended)
    return ExperimentAnalysis(
        experiment=spec.name,
        control=spec.control,
        primary_metric=spec.primary_metric,
        alpha=spec.alpha,
        minimum_detectable_effect=spec.minimum_detectable_effect,
        arms=arms,
        srm=srm,
        needed=needed,
        verdict=verdict,
        notes=tuple(_notes(spec, results, control_arm)),
        configured=spec.configured,
        split_arms=spec.arms,
        spec=spec,
        horizon=horizon,
        recommended=recommended,
    )


def _notes(
    spec: ExperimentSpec, results: dict[str, ArmResult], control_arm: ArmData | None
) -> list[str]:
    notes = []
    if HOLDOUT in results and control_arm is not None and spec.control != HOLDOUT:
        primary = results[HOLDOUT].primary
        if primary is not None and primary.abs_lift is not None and primary.abs_lift_ci:
            ci = primary.abs_lift_ci
            notes.append(
                f"Sending {spec.control!r} at all changes {METRIC_NAMES[spec.primary_metric]} "
                f"by {100 * -primary.abs_lift:+.1f} points [{100 * -ci.high:+.1f}, "
                f"{100 * -ci.low:+.1f}] against the holdout, {format_p(primary.p_value)}."
            )
    for name, arm in results.items():
        for guard in arm.guardrails:
            if guard.harmed:
                notes.append(
                    f"Guardrail: {name} raises the {METRIC_LABELS[guard.metric]} from "
                    f"{100 * (guard.control.rate or 0):.2f}% to "
                    f"{100 * (guard.variant.rate or 0):.2f}% ({format_p(guard.comparison.p_value)}"
                    ", one-sided): it will not be shipped."
                )
    return notes


def _judge(
    results: dict[str, ArmResult],
    family: list[str],
    spec: ExperimentSpec,
    data: ExperimentData,
    srm: SampleRatioCheck,
    horizon: Horizon,
) -> None:
    """Adjust the family's p-values and intervals, then decide each arm (in place)."""
    if not family:
        return
    fixed = _fixed_figures(results, family, spec, data, horizon)
    seq_p = [_seq_p(results[a]) for a in family]
    seq_adjusted: list[float | None] = list(seq_p)
    seq_levels: list[float] = [spec.alpha] * len(family)
    if all(p is not None for p in seq_p):
        clean = [float(p) for p in seq_p if p is not None]
        seq_adjusted = list(adjust(clean, spec.multiplicity))
        seq_levels = interval_levels(clean, spec.alpha, spec.multiplicity)
    for index, name in enumerate(family):
        arm = results[name]
        seq_ci = None
        if arm.sequential is not None and arm.sequential.ci is not None:
            looks = _looks(data.daily, spec.control, name, spec)
            seq_ci = (
                _sequential(looks, spec, seq_levels[index])[-1].ci
                if looks and seq_levels[index] != spec.alpha
                else arm.sequential.ci
            )
        p_fixed, ci_fixed, rel_ci_fixed, lift_fixed = fixed[name]
        decision = decide_arm(
            mode=spec.decision,
            alpha=spec.alpha,
            horizon_reached=horizon.reached,
            srm_mismatch=srm.mismatch,
            design_missing=spec.minimum_detectable_effect is None,
            sequential_p=seq_adjusted[index],
            sequential_ci=seq_ci,
            fixed_p=p_fixed,
            fixed_ci=ci_fixed,
            lift=lift_fixed
            if spec.decision == FIXED
            else arm.primary.abs_lift
            if arm.primary
            else None,
            harmed_guardrails=tuple(METRIC_LABELS[g.metric] for g in arm.guardrails if g.harmed),
        )
        results[name] = replace(
            arm,
            p_value_adjusted=p_fixed,
            abs_lift_ci_adjusted=ci_fixed,
            rel_lift_ci_adjusted=rel_ci_fixed,
            sequential_p_adjusted=seq_adjusted[index],
            sequential_ci_adjusted=seq_ci,
            decision=decision,
        )


def _seq_p(arm: ArmResult) -> float | None:
    return arm.sequential.p_value if arm.sequential is not None else None


def _fixed_figures(
    results: dict[str, ArmResult],
    family: list[str],
    spec: ExperimentSpec,
    data: ExperimentData,
    horizon: Horizon,
) -> dict[str, tuple[float | None, Interval | None, Interval | None, float | None]]:
    """The fixed-horizon p (adjusted) and intervals at the matching level, per arm; in a fixed
    design past its horizon, computed on the data of the look at the horizon (decided once)."""
    pairs: dict[str, tuple[Proportion, Proportion]] = {}
    for name in family:
        control, variant = data.arms[spec.control], data.arms[name]
        pair = (control.metric(spec.primary_metric), variant.metric(spec.primary_metric))
        if spec.decision == FIXED and horizon.reached and horizon.day is not None:
            day = horizon.day
            at = [look for look in _looks(data.daily, spec.control, name, spec) if look[0] <= day]
            if at:
                pair = (at[-1][1], at[-1][2])
        pairs[name] = pair
    comparisons = {
        name: compare_proportions(c, v, spec.alpha, spec.alternative)
        for name, (c, v) in pairs.items()
    }
    raw = [comparisons[a].p_value for a in family]
    if any(p is None for p in raw):
        return {
            a: (comparisons[a].p_value, comparisons[a].abs_lift_ci, None, comparisons[a].abs_lift)
            for a in family
        }
    clean = [float(p) for p in raw if p is not None]
    adjusted = adjust(clean, spec.multiplicity)
    levels = interval_levels(clean, spec.alpha, spec.multiplicity)
    out: dict[str, tuple[float | None, Interval | None, Interval | None, float | None]] = {}
    for name, p, level in zip(family, adjusted, levels, strict=True):
        c, v = pairs[name]
        lift = comparisons[name].abs_lift
        if level == spec.alpha:
            out[name] = (p, comparisons[name].abs_lift_ci, comparisons[name].rel_lift_ci, lift)
        else:
            absolute, relative = score_intervals(c, v, level, spec.alternative)
            out[name] = (p, absolute, relative, lift)
    return out


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
        delivery=data.delivery.get(arm.variant) if data.delivery is not None else None,
    )
    if control is None:
        return base
    metric = spec.primary_metric
    pc, pv = control.metric(metric), arm.metric(metric)
    primary = compare_proportions(pc, pv, spec.alpha, spec.alternative)
    sequential: SequentialResult | None = None
    lift: tuple[LiftPoint, ...] = ()
    looks = _looks(data.daily, spec.control, arm.variant, spec)
    if spec.minimum_detectable_effect is not None:
        tau = spec.minimum_detectable_effect
        always = _sequential(looks, spec, spec.alpha) if looks else []
        if always and always[-1].p_value is not None:
            sequential = SequentialResult(
                status=OK, diff=primary.abs_lift, p_value=always[-1].p_value, ci=always[-1].ci
            )
        else:
            sequential = msprt_proportions(pc, pv, tau, spec.alpha, spec.alternative)
        lift = tuple(
            LiftPoint(day, fixed.abs_lift, fixed.abs_lift_ci, seq.ci, seq.p_value)
            for (day, c, v), seq in zip(looks, always, strict=True)
            for fixed in (compare_proportions(c, v, spec.alpha, spec.alternative),)
        )
    adjusted_cuped = None
    if metric == "conversion" and control.cuped_conversion and arm.cuped_conversion:
        adjusted_cuped = cuped(control.cuped_conversion, arm.cuped_conversion, spec.alpha)
    guardrails = []
    for name in spec.guardrails:
        counts = data.guardrails.get(name)
        if counts is None:
            continue
        gc = Proportion(control.exposures, counts.get(control.variant, 0))
        gv = Proportion(arm.exposures, counts.get(arm.variant, 0))
        test = compare_proportions(gc, gv, spec.alpha, GREATER)
        harmed = test.p_value is not None and test.p_value < spec.alpha and arm.variant != HOLDOUT
        guardrails.append(GuardrailResult(name, gc, gv, test, harmed))
    return replace(
        base,
        primary=primary,
        p_value_adjusted=primary.p_value,
        abs_lift_ci_adjusted=primary.abs_lift_ci,
        rel_lift_ci_adjusted=primary.rel_lift_ci,
        prob_beat_control=prob_beats(pc, pv),
        expected_loss=expected_loss(pc, pv),
        sequential=sequential,
        revenue=welch_test(control.revenue, arm.revenue, spec.alpha, spec.alternative),
        cuped=adjusted_cuped,
        cuped_revenue=(
            cuped(control.cuped_revenue, arm.cuped_revenue, spec.alpha)
            if control.cuped_revenue and arm.cuped_revenue
            else None
        ),
        detectable=(
            detectable_effect(
                spec.baseline_rate, control.exposures, arm.exposures, spec.alpha, spec.power
            )
            if spec.baseline_rate is not None
            else None
        ),
        lift_over_time=lift,
        secondary=tuple(
            (
                name,
                compare_proportions(
                    control.metric(name), arm.metric(name), spec.alpha, spec.alternative
                ),
            )
            for name in spec.secondary_metrics
            if name in METRIC_NAMES and name != metric
        ),
        orders_per_clicker=(
            ratio_test(control.orders_per_clicker, arm.orders_per_clicker, spec.alpha)
            if control.clicks and arm.clicks
            else None
        ),
        guardrails=tuple(guardrails),
    )


def _figures(arm: ArmResult) -> str:
    decision = arm.decision
    assert decision is not None
    assert decision.lift is not None
    shown = f"{_points(abs(decision.lift))} points"
    if decision.ci is not None:
        shown += f" [{_points(decision.ci.low)}, {_points(decision.ci.high)}]"
    label = "always-valid p" if decision.basis and "always" in decision.basis else "p"
    if decision.p_value is not None:
        shown += ", " + format_p(decision.p_value).replace("p", label, 1)
    return shown


def _verdict(
    spec: ExperimentSpec,
    arms: tuple[ArmResult, ...],
    srm: SampleRatioCheck,
    horizon: Horizon,
    data: ExperimentData,
    recommended: str | None,
) -> str:
    """Every variant's decision in one paragraph: winners, losers, then the rest."""
    metric = METRIC_NAMES[spec.primary_metric]
    if not data.arms:
        return "No exposures yet: nothing to judge."
    if spec.control not in data.arms:
        return f"No exposures in the control arm {spec.control!r} yet: nothing to compare with."
    if srm.mismatch:
        return (
            f"Sample ratio mismatch ({format_p(srm.p_value)}): the split does not match the "
            "planned shares, so these results cannot be trusted; find the cause before "
            "reading them."
        )
    judged = [a for a in arms if a.decision is not None]
    if not judged:
        return "No variant to compare with control yet."
    if spec.minimum_detectable_effect is None:
        missing = " and ".join(spec.missing_design)
        return (
            f"Not judged: the design does not give {missing}. Add them to "
            f"[experiments.{spec.name}] in config.toml (see docs/experiments.md)."
        )
    parts = []
    for arm in sorted(judged, key=lambda a: -(a.primary.abs_lift or 0) if a.primary else 0):
        decision = arm.decision
        assert decision is not None
        if decision.action == SHIP:
            advice = "ship it" if arm.variant == recommended else "it beats control too"
            parts.append(f"{arm.variant} raises {metric} by {_figures(arm)}: {advice}.")
    for arm in sorted(judged, key=lambda a: (a.primary.abs_lift or 0) if a.primary else 0):
        decision = arm.decision
        assert decision is not None
        if decision.action == STOP:
            if decision.lift is not None and decision.lift > 0:
                parts.append(f"{arm.variant}: {decision.reason}: stop it.")
            else:
                parts.append(f"{arm.variant} lowers {metric} by {_figures(arm)}: stop it.")
    waiting = [a for a in judged if a.decision is not None and a.decision.action == CONTINUE]
    if waiting:
        names = ", ".join(a.variant for a in waiting)
        if horizon.kind == "sample_size" and horizon.planned_per_arm is not None:
            progress = (
                f"{horizon.reached_per_arm:,} of the {horizon.planned_per_arm:,} exposures per "
                f"arm planned to detect {_points(spec.minimum_detectable_effect)} points"
            )
        elif horizon.kind == "duration":
            progress = f"day {horizon.days} of {horizon.planned_days}"
        else:
            progress = "no horizon planned"
        leader = max(waiting, key=lambda a: a.primary.abs_lift or 0)  # type: ignore[union-attr]
        parts.append(f"Not yet for {names} ({progress}); so far {_so_far(leader, spec)}.")
    flat = [a for a in judged if a.decision is not None and a.decision.action == INCONCLUSIVE]
    if flat:
        names = ", ".join(a.variant for a in flat)
        best = max(flat, key=lambda a: a.primary.abs_lift or 0)  # type: ignore[union-attr]
        parts.append(
            f"No detectable change for {names} by the horizon (best: {_so_far(best, spec)})"
            + ("" if recommended else f": keep {spec.control}")
            + "."
        )
    return " ".join(parts)


def _so_far(arm: ArmResult, spec: ExperimentSpec) -> str:
    """The arm's lift with the interval and p of the design's own test."""
    primary = arm.primary
    assert primary is not None
    assert primary.abs_lift is not None
    if spec.decision == FIXED:
        ci, p, label = arm.abs_lift_ci_adjusted, arm.p_value_adjusted, "p"
    else:
        ci, p, label = arm.sequential_ci_adjusted, arm.sequential_p_adjusted, "always-valid p"
    shown = f"{arm.variant} {'+' if primary.abs_lift >= 0 else '-'}{_points(abs(primary.abs_lift))}"
    shown += " points"
    if ci is not None:
        shown += f" [{_points(ci.low)}, {_points(ci.high)}]"
    if p is not None:
        shown += ", " + format_p(p).replace("p", label, 1)
    return shown
