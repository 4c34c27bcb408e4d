"""What a run needs from an experiment: each selected customer's arm, the template and context of
each arm, and the exposures to record once the messages are queued."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import Engine

from campaigns.config.schema import CampaignConfig
from campaigns.experiments.assignment import assign_variants
from campaigns.experiments.exposures import promoted_variant, record_exposures
from campaigns.experiments.spec import HOLDOUT, experiment_spec


@dataclass(frozen=True)
class CampaignArms:
    """The arms of a campaign's selected customers in one run.

    ``arms`` has the index of the customer ids it was computed for; a value is a variant name or
    ``"holdout"``. ``promoted`` is set when a variant has been promoted: then every customer gets
    it, and no exposures are recorded (the experiment is over).
    """

    experiment: str
    arms: pd.Series
    promoted: str | None = None
    #: Days of spend before exposure that make each exposure's CUPED covariate.
    covariate_days: int = 90

    @property
    def messaged(self) -> pd.Series:
        """True for the customers who get a message (everyone but the holdout)."""
        return self.arms != HOLDOUT


def campaign_arms(
    engine: Engine, campaign: str, config: CampaignConfig, customer_ids: pd.Series
) -> CampaignArms | None:
    """Each customer's arm for ``campaign``, or None when it runs no experiment."""
    if config.experiment is None:
        return None
    spec = experiment_spec(campaign, config.experiment)
    promoted = promoted_variant(engine, spec.name)
    if promoted is not None and promoted in spec.variants:
        arms = pd.Series(promoted, index=customer_ids.index, name="variant", dtype=object)
        return CampaignArms(spec.name, arms, promoted, spec.covariate_days)
    return CampaignArms(spec.name, assign_variants(spec, customer_ids), None, spec.covariate_days)


def variant_context(config: CampaignConfig, variant: str | None) -> dict[str, Any] | None:
    """What templates see as ``variant``: its ``name`` and its parameters (None without one)."""
    if variant is None or config.experiment is None:
        return None
    found = config.experiment.variants.get(variant)
    return {"name": variant, **(dict(found.parameters) if found is not None else {})}


def exposures_frame(arms: CampaignArms, customer_ids: pd.Series, at: datetime) -> pd.DataFrame:
    """The exposures to record for ``customer_ids`` (all arms, the holdout included) at ``at``;
    empty once a variant is promoted."""
    if arms.promoted is not None:
        customer_ids = customer_ids.iloc[:0]
    return pd.DataFrame(
        {
            "experiment": arms.experiment,
            "variant": arms.arms.loc[customer_ids.index].to_numpy(),
            "customer_id": customer_ids.astype(str).to_numpy(),
            "exposed_at": pd.Timestamp(at),
        },
        columns=["experiment", "variant", "customer_id", "exposed_at"],
    )


def record_campaign_exposures(
    engine: Engine, arms: CampaignArms, customer_ids: pd.Series, at: datetime
) -> int:
    """Record the exposures of a run's selected customers (first exposure per customer counts)."""
    return record_exposures(engine, exposures_frame(arms, customer_ids, at), arms.covariate_days)


def trial_renders(config: CampaignConfig) -> list[tuple[str, dict[str, Any] | None]]:
    """The (template, ``variant`` context) pairs ``campaign check`` should trial-render for a
    campaign: its own template (with control's context in an experiment), then each variant's."""
    if config.experiment is None:
        return [(config.template, None)]
    pairs = [(config.template, variant_context(config, config.experiment.control))]
    for name, variant in config.experiment.variants.items():
        pair = (variant.template, variant_context(config, name))
        if pair not in pairs:
            pairs.append(pair)
    return pairs
