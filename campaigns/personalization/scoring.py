"""Model scores as customer columns: ``propensity`` and ``uplift`` in the run's customer table."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sqlalchemy import Engine

from campaigns.config.schema import Config
from campaigns.personalization.chance import is_rejected
from campaigns.personalization.models_store import KINDS, latest_row, usable_model


def with_scores(engine: Engine, customers: pd.DataFrame) -> pd.DataFrame:
    """``customers`` plus a ``propensity`` and an ``uplift`` column for each kind of model the
    store holds (the newest version that beat chance, or was accepted anyway; a rejected model
    never scores), so that ``where = "propensity > 0.3"`` works.

    A model that needs columns the table lacks raises
    :class:`~campaigns.personalization.errors.PersonalizationError`.
    """
    scored = customers
    for kind in KINDS:
        if kind == "clv":
            continue  # needs the transactions: clv.commands.with_lifetime_value adds its columns
        stored = usable_model(engine, kind)
        if stored is not None:
            scored = scored.assign(**{kind: stored.model.score(customers)})
        elif latest_row(engine, kind) is not None:
            # Only rejected models: the column exists but scores nobody, so a campaign that
            # targets by it selects no one (and ``campaign check`` says why).
            scored = scored.assign(**{kind: np.nan})
    return scored


def rejected_model_warnings(engine: Engine, config: Config) -> list[str]:
    """``campaign check``'s warnings: a campaign targets by (or filters on) a model score whose
    newest model was rejected as no better than chance."""
    warnings: list[str] = []
    for kind in KINDS:
        latest = latest_row(engine, kind)
        if latest is None or not is_rejected(latest.report, latest.settings):
            continue
        fallback = usable_model(engine, kind)
        instead = (
            f"runs score with v{fallback.version} instead"
            if fallback is not None
            else f"runs score no one by {kind}, so this campaign selects no one by it"
        )
        for name, campaign in config.campaigns.items():
            uses = []
            if campaign.target is not None and kind in (campaign.target.by, campaign.target.value):
                uses.append("target")
            condition = campaign.condition()
            if condition is not None and any(n == kind for n, _ in condition.names):
                uses.append("where")
            for key in uses:
                warnings.append(
                    f"campaigns.{name}.{key}: uses {kind!r}, but the newest {kind} model "
                    f"(v{latest.version}) is no better than chance and was rejected; {instead}. "
                    f"Retrain it, or accept it with 'campaign model train {kind} --accept'"
                )
    return warnings
