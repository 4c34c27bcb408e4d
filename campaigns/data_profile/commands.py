"""The workspace side of ``campaign data profile``: profile what the store holds (loading the
source first when it is empty), with what the last load set aside."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from campaigns.config.schema import Config
from campaigns.data_checks import stale_warning
from campaigns.data_profile.tables import profile_table
from campaigns.data_profile.transactions import profile_transactions
from store.engine import get_meta, opened_store
from store.frames import ShopData

#: The meta key under which a load records its quarantine counts.
QUARANTINED_KEY = "quarantined"


def profile_shop(
    shop: ShopData, at: datetime, quarantined: dict[str, int] | None = None
) -> dict[str, Any]:
    """The profile of the three tables, the transaction log's own figures and the warnings."""
    quarantined = dict(quarantined or {})
    warning = stale_warning(shop.transactions, at)
    factorised: dict[str, Any] = {}
    transactions = profile_table(shop.transactions, factorised)
    return {
        "at": at.isoformat(),
        "tables": {
            "customers": profile_table(shop.customers),
            "products": profile_table(shop.products),
            "transactions": transactions,
        },
        "transaction_log": profile_transactions(shop.transactions, quarantined, factorised),
        "quarantined": quarantined,
        "warnings": [warning] if warning else [],
    }


def profile_workspace(config: Config, at: datetime | None = None) -> dict[str, Any]:
    """``campaign data profile``: the store's data at ``at`` (default: now)."""
    from campaigns.data import ensure_data

    at = at or datetime.now(UTC).replace(tzinfo=None)
    with opened_store(config.store.url, config.root) as engine:
        shop, _ = ensure_data(engine, config, at)
        recorded = get_meta(engine, QUARANTINED_KEY)
    quarantined = json.loads(recorded) if recorded else {}
    return profile_shop(shop, at, quarantined)
