"""Save a :class:`~store.frames.ShopData` into the store and read it back."""

from __future__ import annotations

import json

import pandas as pd
from sqlalchemy import Engine

from store.bulk import bulk_transaction, read_frame
from store.features import THROUGH
from store.frames import (
    CUSTOMER_COLUMNS,
    EVENT_COLUMNS,
    PRODUCT_COLUMNS,
    TRANSACTION_COLUMNS,
    ShopData,
)
from store.tables import Transaction


def save_shop(engine: Engine, shop: ShopData, facts: dict[str, str] | None = None) -> None:
    """Replace the store's customers, products, transactions and events with ``shop``, atomically.

    Everything happens in one transaction, ``facts`` (``meta`` keys such as ``loaded_at``)
    included: a load killed midway leaves the previous data, never a mixture (all customers and
    no transaction lines, say). Readers see the old data until the load commits.
    """
    customers = shop.customers[list(CUSTOMER_COLUMNS)].copy()
    traits = shop.customers[shop.trait_columns]
    records: list[dict[str, object]] = (
        traits.to_dict("records") if len(traits.columns) else [{}] * len(traits)  # type: ignore[assignment]
    )
    customers["traits"] = pd.Series(records, index=customers.index, dtype=object)
    # Building an index once after a bulk load is several times faster than maintaining it row
    # by row (10M lines on SQLite: about 20 s instead of 50 s).
    indexes = list(Transaction.__table__.indexes)  # type: ignore[attr-defined]
    with bulk_transaction(engine) as writer:
        for table in ("transaction_line", "product", "customer"):
            writer.empty(table)
        # The source's events feed is replaced; events the shop posted to the endpoint stay.
        writer.execute("DELETE FROM customer_event WHERE event_id IS NULL")
        for index in indexes:
            writer.execute(f'DROP INDEX IF EXISTS "{index.name}"')
        writer.insert("customer", customers, json_columns=["traits"])
        writer.insert("product", shop.products[list(PRODUCT_COLUMNS)])
        writer.insert("transaction_line", shop.transactions[list(TRANSACTION_COLUMNS)])
        for index in indexes:
            columns = ", ".join(f'"{c.name}"' for c in index.columns)
            writer.execute(f'CREATE INDEX "{index.name}" ON "{index.table.name}" ({columns})')
        writer.insert("customer_event", shop.events[list(EVENT_COLUMNS)])
        for table in ("customer", "transaction_line", "customer_event"):
            writer.analyze(table)
        for key, value in (facts or {}).items():
            writer.execute("DELETE FROM meta WHERE key = ?", (key,))
            writer.execute("INSERT INTO meta (key, value) VALUES (?, ?)", (key, value))
        # The feature aggregates describe the old lines: the next refresh rebuilds them (also
        # when two loads record the same loaded_at).
        writer.execute("DELETE FROM meta WHERE key = ?", (THROUGH,))


def count_customers(engine: Engine) -> int:
    """How many customers the store holds."""
    frame = read_frame(engine, "SELECT COUNT(*) AS n FROM customer")
    return int(frame["n"].iloc[0])


def load_shop(engine: Engine, lazy: bool = False) -> ShopData:
    """Read customers (traits expanded into columns), products and transactions.

    With ``lazy=True`` the transaction log is read only when ``transactions`` is first used
    (a run whose features come from the store's aggregates never reads it).
    """
    customers = read_frame(
        engine,
        "SELECT " + ", ".join(CUSTOMER_COLUMNS) + ", traits FROM customer ORDER BY customer_id",
        datetime_columns=["signup_at"],
    )
    traits = pd.DataFrame.from_records(
        _parse_traits(customers.pop("traits")), index=customers.index
    )
    customers = pd.concat([customers, traits], axis=1)
    products = read_frame(
        engine, "SELECT " + ", ".join(PRODUCT_COLUMNS) + " FROM product ORDER BY product_id"
    )
    events = read_frame(
        engine,
        "SELECT " + ", ".join(EVENT_COLUMNS) + " FROM customer_event ORDER BY id",
        datetime_columns=["occurred_at"],
    )
    if lazy:
        return StoredShop(customers, products, events, engine)
    return ShopData(
        customers=customers,
        products=products,
        transactions=read_transactions(engine),
        events=events,
    )


def _parse_traits(texts: pd.Series) -> list[dict[str, object]]:
    """Each customer's traits from its JSON text: one ``json.loads`` of them all as one array
    (about three times faster than one call per customer); a missing or non-object value is no
    trait."""
    values = texts.tolist()
    if all(isinstance(v, str) for v in values):
        parsed = json.loads("[" + ",".join(values) + "]") if values else []
    else:  # PostgreSQL's driver decodes JSON columns itself
        parsed = [json.loads(v) if isinstance(v, str) else v for v in values]
    return [p if isinstance(p, dict) else {} for p in parsed]


def read_transactions(engine: Engine) -> pd.DataFrame:
    """The whole transaction log, in id order."""
    return read_frame(
        engine,
        "SELECT " + ", ".join(TRANSACTION_COLUMNS) + " FROM transaction_line ORDER BY id",
        datetime_columns=["invoiced_at"],
    )


class StoredShop(ShopData):
    """A :class:`~store.frames.ShopData` read from the store whose transaction log is read on
    first use of ``transactions`` (the engine must still be open then)."""

    def __init__(
        self, customers: pd.DataFrame, products: pd.DataFrame, events: pd.DataFrame, engine: Engine
    ) -> None:
        # A frozen dataclass: fields are set the way its own __init__ sets them. ``transactions``
        # is left unset, so that the first read of it reaches __getattr__.
        object.__setattr__(self, "customers", customers)
        object.__setattr__(self, "products", products)
        object.__setattr__(self, "quarantined", {})
        object.__setattr__(self, "events", events)
        object.__setattr__(self, "_engine", engine)

    @property
    def transactions_read(self) -> bool:
        """Whether the transaction log has been read."""
        return "transactions" in self.__dict__

    def __getattr__(self, name: str) -> pd.DataFrame:
        if name != "transactions":
            raise AttributeError(name)
        transactions = read_transactions(self.__dict__["_engine"])
        object.__setattr__(self, "transactions", transactions)
        return transactions


def trait_columns(engine: Engine) -> list[str]:
    """The trait names customers in the store carry (read from one customer)."""
    frame = read_frame(engine, "SELECT traits FROM customer LIMIT 1", json_columns=["traits"])
    if frame.empty or not isinstance(frame["traits"].iloc[0], dict):
        return []
    return sorted(frame["traits"].iloc[0])
