"""The plain tables that flow between data sources, the store and the pipeline.

Every data source produces a :class:`ShopData`; its three DataFrames have exactly the columns below
(customers may carry extra trait columns after the standard ones).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

#: Standard customer columns. ``customer_id`` is a string; ``signup_at`` is tz-naive UTC.
CUSTOMER_COLUMNS: tuple[str, ...] = (
    "customer_id",
    "email",
    "first_name",
    "last_name",
    "country",
    "timezone",
    "signup_at",
)

#: Product catalogue columns. ``price`` is the list price.
PRODUCT_COLUMNS: tuple[str, ...] = ("product_id", "name", "category", "price")

#: Transaction line columns. ``unit_price`` * ``quantity`` is the line amount; ``invoiced_at`` is
#: tz-naive UTC.
TRANSACTION_COLUMNS: tuple[str, ...] = (
    "invoice",
    "customer_id",
    "product_id",
    "quantity",
    "unit_price",
    "invoiced_at",
)

#: Events feed columns (``occurred_at`` is tz-naive UTC).
EVENT_COLUMNS: tuple[str, ...] = ("customer_id", "event", "occurred_at")


def no_events() -> pd.DataFrame:
    """An empty events feed."""
    return pd.DataFrame(
        {
            "customer_id": pd.Series(dtype=str),
            "event": pd.Series(dtype=str),
            "occurred_at": pd.Series(dtype="datetime64[ns]"),
        }
    )


@dataclass(frozen=True)
class ShopData:
    """Customers, products and transactions, as loaded from a source.

    ``quarantined`` counts rows that a file source set aside, by reason (empty for the demo).
    Field order is kept for positional construction: customers, products, transactions.
    """

    customers: pd.DataFrame
    products: pd.DataFrame
    transactions: pd.DataFrame
    quarantined: dict[str, int] = field(default_factory=dict)
    #: The events feed (``EVENT_COLUMNS``) that ``event`` triggers fire on.
    events: pd.DataFrame = field(default_factory=no_events)

    @property
    def trait_columns(self) -> list[str]:
        """Customer columns beyond the standard ones (demographics and other traits)."""
        return [c for c in self.customers.columns if c not in CUSTOMER_COLUMNS]
