"""Build an experiment's report from the store, and its JSON form."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import date
from typing import Any

from sqlalchemy import Engine

from campaigns.config.schema import Config
from campaigns.experiments.analysis import NOT_CHECKED, ArmResult, ExperimentAnalysis, analyse
from campaigns.experiments.attribution import aggregate
from campaigns.experiments.exposures import delivery_counts, stored_experiments
from campaigns.experiments.guardrails import guardrail_counts
from campaigns.experiments.spec import (
    HOLDOUT,
    ExperimentSpec,
    UnknownExperiment,
    experiments_in,
    imported_spec,
    with_control,
)
from campaigns.experiments.stats import Interval, ProportionComparison


def find_spec(
    engine: Engine, config: Config | None, name: str, control: str | None = None
) -> ExperimentSpec:
    """The experiment called ``name``: from a campaign in config, else from imported exposures
    in the store (with its ``[experiments.NAME]`` design when the config has one)."""
    configured = experiments_in(config) if config is not None else {}
    if name in configured:
        return with_control(configured[name], control)
    stored = stored_experiments(engine)
    designs = config.experiments if config is not None else {}
    if name in stored or name in designs:
        return imported_spec(name, stored.get(name, []), control, designs.get(name))
    known = sorted({*configured, *stored, *designs})
    listed = ", ".join(repr(k) for k in known) if known else "none"
    raise UnknownExperiment(f"no experiment called {name!r}; experiments: {listed}")


def build_report(
    engine: Engine,
    config: Config | None,
    name: str,
    control: str | None = None,
    as_of: date | None = None,
) -> ExperimentAnalysis:
    """Aggregate ``name`` in the database and compute every figure of its report; ``as_of`` is
    today's date (for a horizon in days)."""
    spec = find_spec(engine, config, name, control)
    data = aggregate(engine, spec)
    data = replace(
        data,
        guardrails=guardrail_counts(engine, spec) if data.arms else {},
        delivery=delivery_counts(engine, spec.name, spec.campaign) if spec.campaign else None,
    )
    return analyse(data, spec, as_of)


def _number(value: float | None) -> float | None:
    """A float for JSON: None for undefined or infinite values (an open interval end)."""
    return value if value is not None and math.isfinite(value) else None


def _interval(value: Interval | None) -> list[float | None] | None:
    return [_number(value.low), _number(value.high)] if value is not None else None


def _proportion(c: ProportionComparison | None) -> dict[str, Any] | None:
    if c is None:
        return None
    return {
        "test": c.test,
        "alternative": c.alternative,
        "abs_lift": c.abs_lift,
        "abs_lift_ci": _interval(c.abs_lift_ci),
        "rel_lift": c.rel_lift,
        "rel_lift_ci": _interval(c.rel_lift_ci),
        "p_value": c.p_value,
    }


def _sequential(arm: ArmResult) -> dict[str, Any] | None:
    seq = arm.sequential
    if seq is None:
        return None
    return {
        "test": "mixture SPRT",
        "p_value": seq.p_value,
        "ci": _interval(seq.ci),
        "p_value_adjusted": arm.sequential_p_adjusted,
        "ci_adjusted": _interval(arm.sequential_ci_adjusted),
    }


def _arm_json(analysis: ExperimentAnalysis, arm: ArmResult) -> dict[str, Any]:
    primary = arm.primary
    role = "control" if arm.is_control else "holdout" if arm.variant == HOLDOUT else "variant"
    delivery = arm.delivery
    revenue, cuped, ratio, decision = arm.revenue, arm.cuped, arm.orders_per_clicker, arm.decision
    return {
        "variant": arm.variant,
        "role": role,
        "exposures": arm.exposures,
        "delivery": (
            {
                "assigned": delivery.assigned,
                "delivered": delivery.delivered,
                "failed": delivery.failed,
                "pending": delivery.pending,
            }
            if delivery is not None
            else None
        ),
        "clicks": arm.clicks,
        "ctr": arm.ctr,
        "conversions": arm.conversions,
        "conversion_rate": arm.conversion_rate,
        "revenue_per_exposure": arm.revenue_per_exposure,
        "test": primary.test if primary else None,
        "abs_lift": primary.abs_lift if primary else None,
        "abs_lift_ci": _interval(primary.abs_lift_ci) if primary else None,
        "abs_lift_ci_adjusted": _interval(arm.abs_lift_ci_adjusted) if primary else None,
        "newcombe_ci": _interval(primary.newcombe_ci) if primary else None,
        "wald_ci": _interval(primary.wald_ci) if primary else None,
        "rel_lift": primary.rel_lift if primary else None,
        "rel_lift_ci": _interval(primary.rel_lift_ci) if primary else None,
        "rel_lift_ci_adjusted": _interval(arm.rel_lift_ci_adjusted) if primary else None,
        "p_value": primary.p_value if primary else None,
        "p_value_adjusted": arm.p_value_adjusted,
        "sequential": _sequential(arm),
        "prob_beat_control": arm.prob_beat_control,
        "expected_loss": (
            {
                "ship_variant": arm.expected_loss.choose_variant,
                "keep_control": arm.expected_loss.choose_control,
            }
            if arm.expected_loss is not None
            else None
        ),
        "revenue": (
            {
                "test": "Welch's t-test",
                "diff": revenue.diff,
                "ci": _interval(revenue.ci),
                "p_value": revenue.p_value,
                "df": revenue.df,
            }
            if revenue is not None and primary is not None
            else None
        ),
        "cuped": (
            {
                "test": "CUPED-adjusted z-test",
                "diff": cuped.diff,
                "ci": _interval(cuped.ci),
                "p_value": cuped.p_value,
                "theta": cuped.theta,
                "variance_reduction": cuped.variance_reduction,
            }
            if cuped is not None
            else None
        ),
        "orders_per_clicker": (
            {
                "test": "delta-method z-test",
                "control": ratio.control,
                "variant": ratio.variant,
                "diff": ratio.diff,
                "ci": _interval(ratio.ci),
                "p_value": ratio.p_value,
            }
            if ratio is not None
            else None
        ),
        "secondary": [{"metric": name, **(_proportion(c) or {})} for name, c in arm.secondary],
        "guardrails": [
            {
                "metric": g.metric,
                "control_rate": g.control.rate,
                "variant_rate": g.variant.rate,
                "test": g.comparison.test,
                "alternative": g.comparison.alternative,
                "p_value": g.comparison.p_value,
                "harmed": g.harmed,
            }
            for g in arm.guardrails
        ],
        "detectable_effect": arm.detectable.effect if arm.detectable else None,
        "decision": (
            {
                "action": decision.action,
                "reason": decision.reason,
                "basis": decision.basis,
                "p_value": decision.p_value,
                "ci": _interval(decision.ci),
            }
            if decision is not None
            else None
        ),
    }


def to_json(analysis: ExperimentAnalysis) -> dict[str, Any]:
    """The report as plain data, every figure the terminal and HTML show; its shape is
    ``report.schema.json`` beside this module."""
    spec = analysis.spec
    srm, horizon = analysis.srm, analysis.horizon
    checked = srm.status != NOT_CHECKED
    return {
        "experiment": analysis.experiment,
        "control": analysis.control,
        "primary_metric": analysis.primary_metric,
        "design": {
            "configured": analysis.configured,
            "missing": list(spec.missing_design) if spec else [],
            "decision_rule": spec.decision if spec else None,
            "alternative": spec.alternative if spec else None,
            "multiplicity": spec.multiplicity if spec else None,
            "alpha": analysis.alpha,
            "power": spec.power if spec else None,
            "baseline_rate": spec.baseline_rate if spec else None,
            "minimum_detectable_effect": analysis.minimum_detectable_effect,
            "planned_shares": dict(spec.shares) if spec and spec.shares_given else None,
            "guardrails": list(spec.guardrails) if spec else [],
        },
        "horizon": (
            {
                "kind": horizon.kind,
                "planned_per_arm": horizon.planned_per_arm,
                "reached_per_arm": horizon.reached_per_arm,
                "reached": horizon.reached,
                "reached_on": horizon.day.isoformat() if horizon.day else None,
                "planned_days": horizon.planned_days,
                "days": horizon.days,
            }
            if horizon is not None
            else None
        ),
        "srm": {
            "checked": checked,
            "test": "chi-square goodness of fit" if checked else None,
            "p_value": srm.p_value,
            "mismatch": srm.mismatch,
            "observed": dict(zip(analysis.split_arms, srm.observed, strict=False)),
            "expected": dict(zip(analysis.split_arms, srm.expected, strict=False)),
        },
        "verdict": analysis.verdict,
        "recommended": analysis.recommended,
        "notes": list(analysis.notes),
        "variants": [_arm_json(analysis, arm) for arm in analysis.arms],
    }
