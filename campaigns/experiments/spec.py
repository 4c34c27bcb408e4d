"""An experiment as the rest of the package sees it: a frozen spec built from config (or from the
store, for experiments run elsewhere), and the checks ``campaign check`` runs on it."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from campaigns.config.experiments import DecisionConfig, ImportedExperimentConfig
from campaigns.config.schema import CampaignConfig, Config, ExperimentConfig
from campaigns.errors import CampaignError
from campaigns.experiments.power import detectable_effect, sample_size

#: The arm that receives nothing; its exposures are recorded all the same.
HOLDOUT = "holdout"


class UnknownExperiment(CampaignError):
    """No experiment of that name in the config or the store."""


class UnknownVariant(CampaignError):
    """A variant that the experiment does not have."""


@dataclass(frozen=True)
class ExperimentSpec:
    """Everything the statistics and the run need about one experiment.

    ``shares`` maps each arm (variants and, when held out, ``holdout``) to its expected share of
    units; it is what the sample-ratio check tests against (unless ``shares_given`` is False: an
    imported experiment without a design, whose equal shares are only a placeholder).
    ``baseline_rate`` and ``minimum_detectable_effect`` are None when an imported experiment's
    design does not give them: then there is no planned size and no always-valid test.
    """

    name: str
    salt: str
    control: str
    variants: tuple[str, ...]
    shares: Mapping[str, float]
    campaign: str | None = None
    templates: Mapping[str, str] = field(default_factory=dict)
    parameters: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    holdout: float = 0.0
    primary_metric: str = "conversion"
    secondary_metrics: tuple[str, ...] = ("revenue_per_exposure",)
    conversions: str = "tracked"
    window: timedelta = timedelta(days=14)
    minimum_detectable_effect: float | None = 0.01
    alpha: float = 0.05
    power: float = 0.8
    baseline_rate: float | None = 0.05
    covariate_days: int = 90
    #: False for experiments imported with ``campaign track exposures`` (not run by a campaign).
    configured: bool = True
    shares_given: bool = True
    #: How it is decided (see :class:`~campaigns.config.experiments.DecisionConfig`).
    decision: str = "sequential"
    alternative: str = "two-sided"
    multiplicity: str = "holm"
    guardrails: tuple[str, ...] = ("unsubscribe_rate", "complaint_rate")
    horizon: timedelta | None = None

    @property
    def missing_design(self) -> tuple[str, ...]:
        """What the design does not say, in words (empty for a complete design)."""
        missing = []
        if not self.shares_given:
            missing.append("the arms' planned shares")
        if self.baseline_rate is None:
            missing.append("the baseline rate")
        if self.minimum_detectable_effect is None:
            missing.append("the minimum detectable effect")
        return tuple(missing)

    @property
    def arms(self) -> tuple[str, ...]:
        """Variants in config order, then the holdout if there is one."""
        return (*self.variants, HOLDOUT) if self.holdout > 0 else self.variants


def parse_window(text: str) -> timedelta:
    """``"14d"`` or ``"48h"`` (already validated by the config schema) as a timedelta."""
    found = re.match(r"^\s*(\d+)\s*([dh])\s*$", text)
    assert found is not None, text
    amount = int(found.group(1))
    return timedelta(days=amount) if found.group(2) == "d" else timedelta(hours=amount)


def _decision(config: DecisionConfig) -> dict[str, Any]:
    return {
        "decision": config.decision,
        "alternative": config.alternative,
        "multiplicity": config.multiplicity,
        "guardrails": tuple(config.guardrails),
        "horizon": parse_window(config.horizon) if config.horizon is not None else None,
    }


def experiment_spec(campaign: str, config: ExperimentConfig) -> ExperimentSpec:
    """The spec of the experiment that ``campaign`` declares."""
    name = config.name or campaign
    total = sum(v.weight for v in config.variants.values())
    shares = {v: (1 - config.holdout) * c.weight / total for v, c in config.variants.items()}
    if config.holdout > 0:
        shares[HOLDOUT] = config.holdout
    return ExperimentSpec(
        name=name,
        salt=config.salt or name,
        control=config.control,
        variants=tuple(config.variants),
        shares=shares,
        campaign=campaign,
        templates={v: c.template for v, c in config.variants.items()},
        parameters={v: dict(c.parameters) for v, c in config.variants.items()},
        holdout=config.holdout,
        primary_metric=config.primary_metric,
        secondary_metrics=tuple(config.secondary_metrics),
        conversions=config.conversions,
        window=parse_window(config.attribution_window),
        minimum_detectable_effect=config.minimum_detectable_effect,
        alpha=config.alpha,
        power=config.power,
        baseline_rate=config.baseline_rate,
        covariate_days=config.covariate_days,
        **_decision(config),
    )


def experiments_in(config: Config) -> dict[str, ExperimentSpec]:
    """Every experiment the config declares, by experiment name."""
    return {
        spec.name: spec
        for spec in (
            experiment_spec(name, campaign.experiment)
            for name, campaign in config.campaigns.items()
            if campaign.experiment is not None
        )
    }


def imported_spec(
    name: str,
    variants: Sequence[str],
    control: str | None = None,
    design: ImportedExperimentConfig | None = None,
) -> ExperimentSpec:
    """The spec of an experiment known from imported exposures, with its ``[experiments.NAME]``
    design when the config has one. What the design does not give stays unknown (None): the
    report says so instead of assuming it."""
    control = control or (design.control if design is not None else "control")
    arms_seen = list(variants)
    if design is not None and design.arms is not None:
        arms_seen += [a for a in design.arms if a not in arms_seen]
    if control not in arms_seen:
        known = ", ".join(repr(v) for v in arms_seen)
        raise UnknownVariant(
            f"experiment {name!r} has no variant {control!r} to use as control; its variants: "
            f"{known}; choose one with --control VARIANT"
        )
    ordered = (control, *[v for v in arms_seen if v != control])
    arms = tuple(v for v in ordered if v != HOLDOUT)
    planned = design.arms if design is not None else None
    given = planned is not None
    if planned is not None:
        total = sum(planned.values())
        shares = {v: planned.get(v, 0.0) / total for v in ordered}
    else:
        shares = {v: 1 / len(ordered) for v in ordered}
    if design is None:
        return ExperimentSpec(
            name=name,
            salt=name,
            control=control,
            variants=arms,
            shares=shares,
            holdout=shares.get(HOLDOUT, 0.0),
            conversions="tracked",
            configured=False,
            shares_given=False,
            minimum_detectable_effect=None,
            baseline_rate=None,
        )
    return ExperimentSpec(
        name=name,
        salt=name,
        control=control,
        variants=arms,
        shares=shares,
        holdout=shares.get(HOLDOUT, 0.0),
        primary_metric=design.primary_metric,
        secondary_metrics=(),
        conversions="tracked",
        window=parse_window(design.attribution_window),
        minimum_detectable_effect=design.minimum_detectable_effect,
        alpha=design.alpha,
        power=design.power,
        baseline_rate=design.baseline_rate,
        covariate_days=0,
        configured=False,
        shares_given=given,
        **_decision(design),
    )


def with_control(spec: ExperimentSpec, control: str | None) -> ExperimentSpec:
    """The spec with another variant as control (``--control``)."""
    if control is None or control == spec.control:
        return spec
    if control not in spec.arms:
        known = ", ".join(repr(v) for v in spec.arms)
        raise UnknownVariant(
            f"experiment {spec.name!r} has no variant {control!r}; its arms: {known}"
        )
    ordered = (control, *[v for v in spec.variants if v != control])
    return replace(spec, control=control, variants=tuple(v for v in ordered if v != HOLDOUT))


def template_for(campaign: CampaignConfig, variant: str | None) -> str:
    """The template a customer in ``variant`` gets (the campaign's own when there is none)."""
    if campaign.experiment is None or variant is None or variant == HOLDOUT:
        return campaign.template
    found = campaign.experiment.variants.get(variant)
    return found.template if found is not None else campaign.template


def experiment_warnings(config: Config, audience_sizes: Mapping[str, int]) -> list[str]:
    """Warnings for experiments whose audience is too small to detect their registered effect.

    ``audience_sizes`` maps campaign name to its audience (customers who can be exposed).
    """
    warnings = []
    for campaign, settings in config.campaigns.items():
        if settings.experiment is None or campaign not in audience_sizes:
            continue
        spec = experiment_spec(campaign, settings.experiment)
        audience = audience_sizes[campaign]
        baseline, effect = spec.baseline_rate, spec.minimum_detectable_effect
        assert baseline is not None  # a campaign's experiment always has them
        assert effect is not None
        control_n = int(audience * spec.shares[spec.control])
        for variant in spec.variants:
            if variant == spec.control:
                continue
            variant_n = int(audience * spec.shares[variant])
            ratio = spec.shares[variant] / spec.shares[spec.control]
            needed = sample_size(baseline, effect, spec.alpha, spec.power, ratio)
            if needed.control is None or needed.variant is None:
                continue
            if control_n >= needed.control and variant_n >= needed.variant:
                continue
            smallest = detectable_effect(baseline, control_n, variant_n, spec.alpha, spec.power)
            detectable = (
                f"; the smallest detectable lift is {100 * smallest.effect:.1f} points"
                if smallest.effect is not None
                else ""
            )
            warnings.append(
                f"campaigns.{campaign}.experiment: an audience of {audience:,} gives "
                f"{control_n:,} customers to {spec.control!r} and {variant_n:,} to {variant!r}, "
                f"but detecting a lift of {100 * effect:.1f} points over "
                f"a {100 * baseline:.1f}% baseline (alpha {spec.alpha:g}, power "
                f"{100 * spec.power:.0f}%) needs {needed.control:,} and {needed.variant:,}"
                f"{detectable}"
            )
    return warnings
