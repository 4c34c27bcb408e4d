"""Build an experiment's report from the store, and its JSON form."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Any

from sqlalchemy import Engine

from campaigns.config.schema import Config
from campaigns.experiments.analysis import ExperimentAnalysis, analyse
from campaigns.experiments.attribution import aggregate
from campaigns.experiments.exposures import delivery_counts, stored_experiments
from campaigns.experiments.guardrails import guardrail_counts
from campaigns.experiments.spec import (
    ExperimentSpec,
    UnknownExperiment,
    experiments_in,
    imported_spec,
    with_control,
)
from campaigns.experiments.stats import Interval

#: The keys of each variant in ``campaign report --format json``, in order.
VARIANT_KEYS = (
    "variant",
    "exposures",
    "clicks",
    "ctr",
    "conversions",
    "conversion_rate",
    "revenue_per_exposure",
    "abs_lift",
    "abs_lift_ci",
    "rel_lift",
    "rel_lift_ci",
    "p_value",
    "p_value_adjusted",
    "prob_beat_control",
)


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


def _interval(value: Interval | None) -> list[float] | None:
    return [value.low, value.high] if value is not None else None


def to_json(analysis: ExperimentAnalysis) -> dict[str, Any]:
    """The report as plain data: the keys of issue 6, the primary metric's comparisons."""
    variants = []
    for arm in analysis.arms:
        primary = arm.primary
        values: dict[str, Any] = {
            "variant": arm.variant,
            "exposures": arm.exposures,
            "clicks": arm.clicks,
            "ctr": arm.ctr,
            "conversions": arm.conversions,
            "conversion_rate": arm.conversion_rate,
            "revenue_per_exposure": arm.revenue_per_exposure,
            "abs_lift": primary.abs_lift if primary else None,
            "abs_lift_ci": _interval(primary.abs_lift_ci) if primary else None,
            "rel_lift": primary.rel_lift if primary else None,
            "rel_lift_ci": _interval(primary.rel_lift_ci) if primary else None,
            "p_value": primary.p_value if primary else None,
            "p_value_adjusted": arm.p_value_adjusted,
            "prob_beat_control": arm.prob_beat_control,
        }
        variants.append({key: values[key] for key in VARIANT_KEYS})
    return {
        "experiment": analysis.experiment,
        "control": analysis.control,
        "srm_p_value": analysis.srm.p_value,
        "verdict": analysis.verdict,
        "variants": variants,
    }
