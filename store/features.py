"""Per-customer aggregates of the transaction log, computed by the database and kept up to date.

A run used to read the whole transaction log back into pandas to compute recency, frequency and
monetary value. The store now keeps, per customer, what those features are made of
(:class:`~store.tables.CustomerFeature`: distinct purchase invoices, net spend, first and last
purchase; :class:`~store.tables.CustomerCategorySpend`: net spend per product category), computed
with ``GROUP BY`` where the lines live (SQLAlchemy Core, the same statements on SQLite and
PostgreSQL). :func:`refresh_features` brings them up to date:

- after a load (``meta.loaded_at`` differs from the one they were built for), or when they were
  never built, or were invalidated (:func:`forget_features`, after lines were deleted), they are
  rebuilt from every line;
- otherwise only the lines with an id above the last one folded in are aggregated, for the
  customers they touch, and merged with an upsert (``INSERT ... ON CONFLICT DO UPDATE``: sums
  and counts add, first and last purchase take the min and max);
- with no new line it reads nothing but two indexed values.

The rules are those of :func:`segmentation.features.rfm_features`: a line's amount is
``quantity * unit_price``; every line of an invoice whose number starts with ``C`` (a
cancellation) counts as a refund (``-abs(amount)``); a purchase line is a line with a
non-negative amount that is not cancelled; ``orders`` counts the distinct invoices of a
customer's purchase lines (a late line of an invoice already counted does not count again).

The state lives in ``meta``: ``features_through`` (the last line id folded in),
``features_loaded_at`` (the load they belong to) and ``features_last_invoiced`` (the latest
``invoiced_at`` folded in: features asked for at an earlier time cannot come from here, and
:func:`features_cover` says so). A refresh is one transaction, serialised (``BEGIN IMMEDIATE`` on
SQLite, a transaction-scoped advisory lock on PostgreSQL), so two processes never fold a line twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from sqlalchemy import (
    Connection,
    Engine,
    Table,
    and_,
    case,
    delete,
    exists,
    func,
    literal,
    select,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.elements import ColumnElement

from store.bulk import BulkWriter, read_frame
from store.tables import CustomerCategorySpend, CustomerFeature, Meta, Product, Transaction

_LINE: Table = Transaction.__table__  # type: ignore[attr-defined]
_PRODUCT: Table = Product.__table__  # type: ignore[attr-defined]
_FEATURE: Table = CustomerFeature.__table__  # type: ignore[attr-defined]
_SPEND: Table = CustomerCategorySpend.__table__  # type: ignore[attr-defined]
_META: Table = Meta.__table__  # type: ignore[attr-defined]

THROUGH, LOADED, LAST_INVOICED = "features_through", "features_loaded_at", "features_last_invoiced"
CATEGORIES = "features_categories"
#: The category of lines whose product is unknown or has none (as in ``category_shares``).
OTHER = "other"
#: The advisory lock key of a refresh on PostgreSQL ("features" in ASCII).
_ADVISORY_KEY = 0x6665617475726573


@dataclass(frozen=True)
class FeatureState:
    """What the feature tables hold after a refresh."""

    #: The last transaction line id folded in (0 for an empty log).
    through: int
    #: The latest ``invoiced_at`` among the lines folded in (None for an empty log).
    last_invoiced: datetime | None
    #: Whether the spend per category is kept.
    categories: bool
    #: What the refresh did: "rebuilt", "built from the loaded lines", "folded N new lines" or
    #: "up to date".
    action: str


def _line_terms(line: Any) -> tuple[ColumnElement[Any], ColumnElement[Any], ColumnElement[Any]]:
    """A line's signed amount, whether it is a purchase, and its invoice time if it is one."""
    amount = line.c.quantity * line.c.unit_price
    cancelled = func.substr(line.c.invoice, 1, 1) == "C"
    signed = case((cancelled, -func.abs(amount)), else_=amount)
    purchase = and_(~cancelled, amount >= 0)
    return signed, purchase, case((purchase, line.c.invoiced_at))


def _aggregates(since: int | None) -> Any:
    """Per-customer aggregates of the lines with id above ``since`` (all lines when None).

    When folding, an invoice that already had a purchase line folded in earlier does not count as
    a new order."""
    line = _LINE.alias("line")
    signed, purchase, purchase_at = _line_terms(line)
    counted = purchase
    query = select(line.c.customer_id)
    if since is not None:
        older = _LINE.alias("older")
        _, older_purchase, _ = _line_terms(older)
        seen = exists().where(
            older.c.customer_id == line.c.customer_id,
            older.c.invoice == line.c.invoice,
            older.c.id <= since,
            older_purchase,
        )
        counted = and_(purchase, ~seen)
    query = query.add_columns(
        func.count(case((counted, line.c.invoice)).distinct()).label("orders"),
        func.sum(signed).label("monetary"),
        func.min(purchase_at).label("first_order_at"),
        func.max(purchase_at).label("last_order_at"),
        func.max(line.c.invoiced_at).label("last_line_at"),
    )
    if since is not None:
        query = query.where(line.c.id > since)
    return query.group_by(line.c.customer_id)


def _category_spend(since: int | None) -> Any:
    """Per customer and category, the net spend of the lines with id above ``since``."""
    line = _LINE.alias("line")
    signed, _, _ = _line_terms(line)
    category = func.coalesce(_PRODUCT.c.category, literal(OTHER)).label("category")
    query = (
        select(line.c.customer_id, category, func.sum(signed).label("spend"))
        .select_from(line.outerjoin(_PRODUCT, _PRODUCT.c.product_id == line.c.product_id))
        .group_by(line.c.customer_id, category)
    )
    if since is not None:
        query = query.where(line.c.id > since)
    return query


def _earlier(a: Any, b: Any) -> ColumnElement[Any]:
    """The earlier of two times, either of which may be NULL (SQLite's ``min(a, b)`` and
    PostgreSQL's ``LEAST`` disagree on NULL)."""
    return case((b.is_(None), a), (a.is_(None), b), (a <= b, a), else_=b)


def _later(a: Any, b: Any) -> ColumnElement[Any]:
    return case((b.is_(None), a), (a.is_(None), b), (a >= b, a), else_=b)


def _upsert(connection: Connection, table: Table, query: Any, keys: list[str]) -> None:
    """``INSERT INTO table SELECT ... ON CONFLICT (keys) DO UPDATE`` merging each column."""
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    columns = [c.name for c in table.columns]
    insert = dialect.insert(table).from_select(columns, query)
    new, old = insert.excluded, table.c
    merges: dict[str, Any] = {}
    for name in columns:
        if name in keys:
            continue
        if name == "first_order_at":
            merges[name] = _earlier(old[name], new[name])
        elif name in ("last_order_at", "last_line_at"):
            merges[name] = _later(old[name], new[name])
        else:  # counts and sums add
            merges[name] = old[name] + new[name]
    connection.execute(insert.on_conflict_do_update(index_elements=keys, set_=merges))


def _meta(connection: Connection) -> dict[str, str]:
    rows = connection.execute(select(_META.c.key, _META.c.value))
    return {str(key): str(value) for key, value in rows}


def _set_meta(connection: Connection, values: dict[str, str]) -> None:
    connection.execute(delete(_META).where(_META.c.key.in_(list(values))))
    connection.execute(_META.insert(), [{"key": k, "value": v} for k, v in values.items()])


def refresh_features(
    engine: Engine, categories: bool = True, lines: FreshLines | None = None
) -> FeatureState:
    """Bring the feature tables up to date with the transaction log (see the module docstring).

    ``categories``: whether the spend per category is wanted (it is kept only when asked for, as
    it is several rows per customer; asking for it when it was not kept rebuilds). ``lines``:
    the lines just loaded, still in memory (the first run after a load): on SQLite a rebuild
    aggregates them with numpy instead of a ``GROUP BY`` that reads them back (about twice as
    fast), provided they are what the store holds (the same count).
    """
    with _serialised(engine) as connection:
        meta = _meta(connection)
        loaded = meta.get("loaded_at", "")
        last_id = int(connection.execute(select(func.max(_LINE.c.id))).scalar() or 0)
        through = meta.get(THROUGH)
        wanted = "1" if categories else "0"
        if (
            through is None
            or meta.get(LOADED) != loaded
            or int(through) > last_id
            or (categories and meta.get(CATEGORIES) != "1")
        ):
            connection.execute(delete(_FEATURE))
            connection.execute(delete(_SPEND))
            # PostgreSQL's GROUP BY is faster than numpy plus copying the rows in (5.7 s against
            # 13.6 s for 1M lines with python -m benchmarks.features); SQLite's is slower.
            in_memory = lines if engine.dialect.name == "sqlite" else None
            if in_memory is not None and len(in_memory.transactions) == _count_lines(connection):
                action = "built from the loaded lines"
                _write_aggregates(connection, engine, in_memory, categories)
            else:
                action = "rebuilt"
                columns = [c.name for c in _FEATURE.columns]
                connection.execute(_FEATURE.insert().from_select(columns, _aggregates(None)))
                if categories:
                    columns = [c.name for c in _SPEND.columns]
                    connection.execute(_SPEND.insert().from_select(columns, _category_spend(None)))
            newest = _as_text(
                connection.execute(select(func.max(_FEATURE.c.last_line_at))).scalar()
            )
        else:
            since = int(through)
            newest = meta.get(LAST_INVOICED, "")
            wanted = meta.get(CATEGORIES, "0")
            if last_id > since:
                _upsert(connection, _FEATURE, _aggregates(since), ["customer_id"])
                if wanted == "1":
                    _upsert(connection, _SPEND, _category_spend(since), ["customer_id", "category"])
                added = connection.execute(
                    select(func.count(), func.max(_LINE.c.invoiced_at)).where(_LINE.c.id > since)
                ).one()
                action = f"folded {int(added[0]):,} new lines"
                newest = max(newest, _as_text(added[1]))
            else:
                action = "up to date"
        _set_meta(
            connection,
            {THROUGH: str(last_id), LOADED: loaded, LAST_INVOICED: newest, CATEGORIES: wanted},
        )
    return FeatureState(last_id, _as_time(newest), wanted == "1", action)


@dataclass(frozen=True)
class FreshLines:
    """Transaction lines and products just loaded, still in memory."""

    transactions: pd.DataFrame
    products: pd.DataFrame


def aggregate_lines(
    lines: FreshLines, categories: bool
) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """The feature tables' rows computed in memory (numpy) from ``lines``, by the same rules as
    the SQL aggregates: ``customer_feature`` rows, and ``customer_category_spend`` rows when
    ``categories``."""
    frame = lines.transactions
    customer, customer_ids = pd.factorize(frame["customer_id"])
    n = len(customer_ids)
    amount = frame["quantity"].to_numpy(dtype=np.float64) * frame["unit_price"].to_numpy(
        dtype=np.float64
    )
    invoice, invoice_ids = pd.factorize(frame["invoice"])
    cancelled = np.asarray(pd.Index(invoice_ids).astype(str).str.startswith("C"), dtype=bool)[
        invoice
    ]
    signed = np.where(cancelled, -np.abs(amount), amount)
    purchase = ~cancelled & (amount >= 0)
    stamps = pd.to_datetime(frame["invoiced_at"]).to_numpy(dtype="datetime64[us]")
    ticks = stamps.view(np.int64)

    monetary = np.bincount(customer, weights=signed, minlength=n)
    pairs = pd.unique(customer[purchase].astype(np.int64) * len(invoice_ids) + invoice[purchase])
    orders = np.bincount(pairs // max(len(invoice_ids), 1), minlength=n)
    bought = pd.Series(ticks[purchase]).groupby(customer[purchase])
    first = pd.Series(bought.min()).reindex(range(n))
    last = pd.Series(bought.max()).reindex(range(n))
    last_line = pd.Series(ticks).groupby(customer).max().reindex(range(n))

    def times(values: pd.Series) -> npt.NDArray[np.datetime64]:
        # Microseconds since the epoch (exact in a float64) back to times; NaN becomes NaT.
        return values.to_numpy(dtype=np.float64).astype("datetime64[us]")

    features = pd.DataFrame(
        {
            "customer_id": np.asarray(customer_ids, dtype=object),
            "orders": orders,
            "monetary": monetary,
            "first_order_at": times(first),
            "last_order_at": times(last),
            "last_line_at": times(last_line),
        }
    )
    if not categories:
        return features, None
    catalogue = lines.products.drop_duplicates("product_id").set_index("product_id")["category"]
    product, product_ids = pd.factorize(frame["product_id"])
    per_product = pd.Series(catalogue.reindex(product_ids).to_numpy(), dtype=object)
    category, names = pd.factorize(per_product.fillna(OTHER))
    m = max(len(names), 1)
    keys = customer.astype(np.int64) * m + category[product]
    spent = pd.Series(signed).groupby(keys).sum()
    codes = spent.index.to_numpy(dtype=np.int64)
    spend = pd.DataFrame(
        {
            "customer_id": np.asarray(customer_ids, dtype=object)[codes // m],
            "category": np.asarray(names, dtype=object)[codes % m],
            "spend": spent.to_numpy(),
        }
    )
    return features, spend


def _write_aggregates(
    connection: Connection, engine: Engine, lines: FreshLines, categories: bool
) -> None:
    features, spend = aggregate_lines(lines, categories)
    writer = BulkWriter(engine, connection.connection.dbapi_connection)
    writer.insert("customer_feature", features)
    if spend is not None:
        writer.insert("customer_category_spend", spend)


def _count_lines(connection: Connection) -> int:
    return int(connection.execute(select(func.count()).select_from(_LINE)).scalar() or 0)


def features_cover(state: FeatureState, at: datetime) -> bool:
    """Whether the stored aggregates are the features at ``at``: no line folded in is dated
    after it (a run at an earlier ``--at`` must leave later lines out, and these cannot)."""
    return state.last_invoiced is None or state.last_invoiced <= at


def _as_text(value: Any) -> str:
    """A stored time as sortable text (SQLite keeps text, PostgreSQL returns a datetime)."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    return str(value)


def _as_time(value: str) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


class _serialised:
    """A transaction that no other refresh runs beside (see the module docstring)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.connection: Connection | None = None

    def __enter__(self) -> Connection:
        if self.engine.dialect.name == "sqlite":
            # pysqlite would begin lazily, after the first reads: begin (and take the write lock)
            # explicitly, so that the state read is the state updated.
            self.connection = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            self.connection.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            self.connection = self.engine.connect()
            self.connection.begin()
            self.connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _ADVISORY_KEY})
        return self.connection

    def __exit__(self, kind: Any, *_: Any) -> None:
        assert self.connection is not None
        sqlite_store = self.engine.dialect.name == "sqlite"
        try:
            if kind is None:
                if sqlite_store:
                    self.connection.exec_driver_sql("COMMIT")
                else:
                    self.connection.commit()
            elif sqlite_store:
                self.connection.exec_driver_sql("ROLLBACK")
            else:
                self.connection.rollback()
        finally:
            self.connection.close()


def forget_features(connection: Connection) -> None:
    """Mark the feature tables stale (the next refresh rebuilds them): call it, in the same
    transaction, after deleting transaction lines, which a fold cannot take back."""
    connection.execute(delete(_META).where(_META.c.key == THROUGH))


def feature_rows(engine: Engine) -> pd.DataFrame:
    """The stored aggregates of every customer, in ``customer_id`` order as the store sorts it
    (the order :func:`store.shop.load_shop` reads customers in, so that the two line up without
    a join in pandas): ``customer_id``, ``orders``, ``monetary``, ``first_order_at``,
    ``last_order_at`` (naive UTC); customers without a line have 0, 0.0 and missing times.

    The join is the database's (a merge of two primary keys), and the rows are fetched through
    the DBAPI cursor in one go, without SQLAlchemy's per-row processing.
    """
    columns = ["customer_id", "orders", "monetary", "first_order_at", "last_order_at"]
    query = (
        "SELECT c.customer_id, coalesce(f.orders, 0), coalesce(f.monetary, 0.0), "
        "f.first_order_at, f.last_order_at FROM customer c "
        "LEFT JOIN customer_feature f ON f.customer_id = c.customer_id ORDER BY c.customer_id"
    )
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute(query)
        rows = cursor.fetchall()
    finally:
        raw.close()
    values: list[tuple[Any, ...]] = list(zip(*rows, strict=True)) if rows else [() for _ in columns]
    frame = pd.DataFrame(
        {
            "customer_id": pd.Series(values[0], dtype=object),
            "orders": pd.Series(values[1], dtype=np.int64),
            "monetary": pd.Series(values[2], dtype=np.float64),
        }
    )
    for name, column in zip(columns[3:], values[3:], strict=True):
        stamps = pd.to_datetime(pd.Series(column, dtype=object), format="ISO8601", utc=True)
        frame[name] = stamps.dt.tz_localize(None)
    return frame


def category_spend_rows(engine: Engine) -> pd.DataFrame:
    """The stored net spend per customer and category (``customer_id``, ``category``,
    ``spend``)."""
    return read_frame(engine, "SELECT customer_id, category, spend FROM customer_category_spend")
