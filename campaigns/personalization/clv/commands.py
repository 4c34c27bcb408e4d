"""Workspace entry points: train and store the lifetime-value model; score customers in a run."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pandas as pd
from sqlalchemy import Engine

from campaigns.config.schema import Config
from campaigns.personalization.clv.model import (
    COLUMNS,
    ClvModel,
    Model,
    last_purchase_day,
    train_clv,
)
from campaigns.personalization.errors import PersonalizationError
from campaigns.personalization.models_store import latest_model, save_model
from store.engine import opened_store
from store.frames import ShopData


def train_clv_model(
    config: Config,
    at: datetime | None = None,
    holdout_days: int = 90,
    unit: str = "weeks",
    model: Model = "bgnbd",
    period_days: float = 365.0,
    discount_rate: float = 0.1,
) -> tuple[int, dict[str, Any]]:
    """``campaign model train clv``: fit on the store's transactions up to ``at`` (default: the
    midnight after the last purchase) and store the model as the next ``clv`` version.

    :return: the version and the report
    """
    from campaigns.data import ensure_data

    with opened_store(config.store.url, config.root) as engine:
        shop, _ = ensure_data(engine, config, at or datetime.now(UTC).replace(tzinfo=None))
        at = at or last_purchase_day(shop.transactions)
        if at is None:
            raise PersonalizationError("the store has no transactions to learn lifetime value from")
        trained, report = train_clv(
            shop.transactions, at, holdout_days, unit, model, period_days, discount_rate
        )
        settings = {
            "holdout_days": holdout_days,
            "unit": unit,
            "model": model,
            "period_days": period_days,
            "discount_rate": discount_rate,
        }
        version = save_model(
            engine, "clv", trained, report, settings, datetime.now(UTC).replace(tzinfo=None)
        )
    return version, report


def with_lifetime_value(
    engine: Engine, customers: pd.DataFrame, shop: ShopData, at: datetime
) -> pd.DataFrame:
    """``customers`` (indexed by customer id) plus the lifetime-value columns of the newest
    stored model, computed from the shop's purchases up to ``at``; missing for customers
    without one. Unchanged when no model is stored (and then the transaction log is not read)."""
    stored = latest_model(engine, "clv")
    if stored is None:
        return customers
    model: ClvModel = stored.model
    values = model.columns(shop.transactions, at).reindex(customers.index)
    return customers.assign(**{c: values[c].to_numpy() for c in COLUMNS})
