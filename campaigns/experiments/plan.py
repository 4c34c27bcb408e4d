"""``campaign experiment plan``: sample sizes and detectable effects before an experiment starts."""

from __future__ import annotations

import math
from dataclasses import dataclass

from campaigns.errors import CampaignError
from campaigns.experiments.power import DetectableEffect, SampleSize, detectable_effect, sample_size
from campaigns.experiments.spec import ExperimentSpec


class DesignMissing(CampaignError):
    """A plan needs a figure the experiment's design does not give."""


@dataclass(frozen=True)
class ExperimentPlan:
    """For each variant against control: units needed for the registered effect, and (given an
    audience) the units it will get and the smallest effect those can detect."""

    spec: ExperimentSpec
    baseline: float
    effect: float
    needed: dict[str, SampleSize]
    audience: int | None
    detectable: dict[str, DetectableEffect]

    def total_needed(self) -> int | None:
        """Units across all arms (holdout included) for every variant to reach its size."""
        shares = self.spec.shares
        totals = []
        for variant, needed in self.needed.items():
            if needed.control is None or needed.variant is None:
                return None
            totals.append(
                max(needed.control / shares[self.spec.control], needed.variant / shares[variant])
            )
        return math.ceil(max(totals)) if totals else None


def plan_experiment(
    spec: ExperimentSpec,
    audience: int | None = None,
    baseline: float | None = None,
    effect: float | None = None,
) -> ExperimentPlan:
    """Sample sizes for ``effect`` (default: the registered MDE) over ``baseline`` (default: the
    registered baseline rate), and the detectable effect for an ``audience`` of that many units."""
    baseline = spec.baseline_rate if baseline is None else baseline
    effect = spec.minimum_detectable_effect if effect is None else effect
    if baseline is None or effect is None:
        option, what = (
            ("--baseline", "baseline rate")
            if baseline is None
            else ("--effect", "minimum detectable effect")
        )
        raise DesignMissing(
            f"experiment {spec.name!r} has no {what} in its design; give {option} or add it to "
            f"[experiments.{spec.name}] in config.toml"
        )
    control = spec.shares[spec.control]
    needed, detectable = {}, {}
    for variant in spec.variants:
        if variant == spec.control:
            continue
        ratio = spec.shares[variant] / control
        needed[variant] = sample_size(baseline, effect, spec.alpha, spec.power, ratio)
        if audience is not None:
            detectable[variant] = detectable_effect(
                baseline,
                int(audience * control),
                int(audience * spec.shares[variant]),
                spec.alpha,
                spec.power,
            )
    return ExperimentPlan(spec, baseline, effect, needed, audience, detectable)
