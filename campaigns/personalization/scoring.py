"""Model scores as customer columns: ``propensity`` and ``uplift`` in the run's customer table."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import Engine

from campaigns.personalization.models_store import KINDS, latest_model


def with_scores(engine: Engine, customers: pd.DataFrame) -> pd.DataFrame:
    """``customers`` plus a ``propensity`` and an ``uplift`` column for each kind of model the
    store holds (the newest version), so that ``where = "propensity > 0.3"`` works.

    A model that needs columns the table lacks raises
    :class:`~campaigns.personalization.errors.PersonalizationError`.
    """
    scored = customers
    for kind in KINDS:
        if kind == "clv":
            continue  # needs the transactions: clv.commands.with_lifetime_value adds its columns
        stored = latest_model(engine, kind)
        if stored is not None:
            scored = scored.assign(**{kind: stored.model.score(customers)})
    return scored
