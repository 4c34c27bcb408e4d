"""Features from the store's per-customer aggregates equal the pandas features over the lines.

The aggregates (``store.features``) are built three ways: a ``GROUP BY`` in the database, numpy
over the lines just loaded, and folds of the lines that arrived since the last refresh. Each must
give what :func:`segmentation.rfm_features` and :func:`segmentation.features.category_shares`
compute from the whole log: on the demo shop, on real data (CDNOW, Online Retail, through the
file source and its quarantine), on SQLite and on a real PostgreSQL.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine, text

from campaigns.config.schema import FilesSource, TableFile
from segmentation.features import (
    category_shares,
    rfm_features,
    rfm_from_aggregates,
    shares_from_spend,
)
from store.bulk import insert_frame
from store.engine import opened_store
from store.features import (
    FreshLines,
    aggregate_lines,
    category_spend_rows,
    feature_rows,
    features_cover,
    forget_features,
    refresh_features,
)
from store.frames import ShopData
from store.shop import load_shop, save_shop
from store.sources.demo import generate_demo_shop
from store.sources.files import load_files

AT = datetime(2026, 11, 23, 12)


def stored_features(engine: Engine, customers: pd.DataFrame, at: datetime) -> pd.DataFrame:
    rfm = rfm_from_aggregates(feature_rows(engine), customers, at)
    shares = shares_from_spend(category_spend_rows(engine), customers)
    return pd.concat([rfm, shares], axis=1)


def pandas_features(shop: ShopData, at: datetime) -> pd.DataFrame:
    rfm = rfm_features(shop.transactions, shop.customers, at)
    shares = category_shares(shop.transactions, shop.customers, shop.products, at)
    return pd.concat([rfm, shares], axis=1)


def assert_same(got: pd.DataFrame, want: pd.DataFrame) -> None:
    # Sums are added in another order (per customer, per fold): equal to the last bits.
    pd.testing.assert_frame_equal(got, want, rtol=1e-9, atol=1e-9)


def test_demo_shop_group_by_and_numpy_equal_pandas(fresh_store: Engine) -> None:
    shop = generate_demo_shop(600, 3, datetime(2026, 11, 20))
    save_shop(fresh_store, shop, facts={"loaded_at": "first"})
    stored = load_shop(fresh_store)
    want = pandas_features(stored, AT)
    assert refresh_features(fresh_store).action == "rebuilt"
    assert_same(stored_features(fresh_store, stored.customers, AT), want)
    # The same rows from the lines in memory, as the first run after a load builds them.
    save_shop(fresh_store, shop, facts={"loaded_at": "second"})
    fresh = FreshLines(shop.transactions, shop.products)
    # (On SQLite; PostgreSQL's GROUP BY is the faster way there.)
    sqlite = fresh_store.dialect.name == "sqlite"
    built = "built from the loaded lines" if sqlite else "rebuilt"
    assert refresh_features(fresh_store, lines=fresh).action == built
    assert_same(stored_features(fresh_store, stored.customers, AT), want)
    assert refresh_features(fresh_store).action == "up to date"


def _line(
    invoice: str, customer: str, product: str, quantity: int, price: float, at: str
) -> dict[str, object]:
    return {
        "invoice": invoice,
        "customer_id": customer,
        "product_id": product,
        "quantity": quantity,
        "unit_price": price,
        "invoiced_at": pd.Timestamp(at),
    }


def small_shop() -> ShopData:
    customers = pd.DataFrame(
        {
            "customer_id": ["a", "b", "c", "d"],
            "email": None,
            "first_name": None,
            "last_name": None,
            "country": None,
            "timezone": "UTC",
            "signup_at": pd.to_datetime(["2025-01-01", "2025-02-01", None, "2026-11-01"]),
        }
    )
    products = pd.DataFrame(
        {
            "product_id": ["tea", "mug", "misc"],
            "name": ["Tea", "Mug", "Misc"],
            "category": ["Tea & Infusions", "Kitchen", None],
            "price": [5.0, 9.0, 1.0],
        }
    )
    lines = pd.DataFrame(
        [
            _line("1", "a", "tea", 2, 5.0, "2026-01-05 10:00:00"),
            _line("1", "a", "mug", 1, 9.0, "2026-01-05 10:00:00"),
            _line("2", "a", "tea", 1, 5.0, "2026-03-01 09:30:00.250000"),
            _line("3", "b", "misc", 3, 1.0, "2026-02-02 12:00:00"),
            _line("4", "b", "tea", -1, 5.0, "2026-02-03 12:00:00"),  # a return
            _line("5", "zz", "tea", 1, 5.0, "2026-02-03 12:00:00"),  # not a customer
        ]
    )
    return ShopData(customers, products, lines)


def test_folds_equal_a_rebuild_and_pandas(fresh_store: Engine) -> None:
    shop = small_shop()
    save_shop(fresh_store, shop, facts={"loaded_at": "x"})
    assert refresh_features(fresh_store).action == "rebuilt"
    arriving = pd.DataFrame(
        [
            _line("1", "a", "tea", 1, 5.0, "2026-01-05 10:05:00"),  # late line of invoice 1
            _line("6", "a", "unknown", 1, 4.0, "2026-06-01 08:00:00"),  # product not listed
            _line("C7", "a", "mug", 1, 9.0, "2026-06-02 08:00:00"),  # a cancellation
            _line("8", "b", "mug", 2, 9.0, "2026-05-01 08:00:00"),
            _line("8", "b", "mug", 1, 9.0, "2026-05-01 08:00:00"),  # two new lines, one order
            _line("9", "c", "tea", 1, 5.0, "2026-04-01 08:00:00"),  # a first purchase
            _line("4", "b", "tea", 2, 5.0, "2026-02-03 12:00:00"),  # invoice 4 was a return only
        ]
    )
    insert_frame(fresh_store, "transaction_line", arriving.iloc[:3])
    assert refresh_features(fresh_store).action == "folded 3 new lines"
    insert_frame(fresh_store, "transaction_line", arriving.iloc[3:])
    state = refresh_features(fresh_store)
    assert state.action == "folded 4 new lines"
    assert state.last_invoiced == datetime(2026, 6, 2, 8)
    stored = load_shop(fresh_store)
    want = pandas_features(stored, AT)
    folded = stored_features(fresh_store, stored.customers, AT)
    assert_same(folded, want)
    assert folded.loc["a", "frequency"] == 3  # invoices 1, 2 and 6; C7 refunds
    assert folded.loc["b", "frequency"] == 3  # invoices 3, 8 and 4 (its purchase line)
    assert folded.loc["d", "frequency"] == 0
    # The folds leave exactly what a rebuild computes.
    with fresh_store.begin() as connection:
        forget_features(connection)
    assert refresh_features(fresh_store).action == "rebuilt"
    assert_same(stored_features(fresh_store, stored.customers, AT), folded)


def test_features_do_not_cover_a_time_before_a_stored_line(fresh_store: Engine) -> None:
    save_shop(fresh_store, small_shop(), facts={"loaded_at": "x"})
    state = refresh_features(fresh_store)
    assert state.last_invoiced == datetime(2026, 3, 1, 9, 30, 0, 250000)
    assert features_cover(state, datetime(2026, 3, 1, 9, 30, 0, 250000))
    assert not features_cover(state, datetime(2026, 3, 1, 9, 30))


def test_categories_are_kept_when_asked_for(fresh_store: Engine) -> None:
    save_shop(fresh_store, small_shop(), facts={"loaded_at": "x"})
    assert not refresh_features(fresh_store, categories=False).categories
    assert category_spend_rows(fresh_store).empty
    insert_frame(
        fresh_store,
        "transaction_line",
        pd.DataFrame([_line("9", "c", "tea", 1, 5.0, "2026-04-01")]),
    )
    assert refresh_features(fresh_store, categories=False).action == "folded 1 new lines"
    assert category_spend_rows(fresh_store).empty
    # Asked for later: rebuilt with them.
    state = refresh_features(fresh_store, categories=True)
    assert (state.action, state.categories) == ("rebuilt", True)
    stored = load_shop(fresh_store)
    assert_same(stored_features(fresh_store, stored.customers, AT), pandas_features(stored, AT))


def test_a_new_load_rebuilds(fresh_store: Engine) -> None:
    shop = small_shop()
    save_shop(fresh_store, shop, facts={"loaded_at": "x"})
    refresh_features(fresh_store)
    fewer = ShopData(shop.customers, shop.products, shop.transactions.iloc[:2])
    # The same loaded_at (two `campaign demo` with one end time): still rebuilt.
    save_shop(fresh_store, fewer, facts={"loaded_at": "x"})
    assert refresh_features(fresh_store).action == "rebuilt"
    rows = feature_rows(fresh_store).set_index("customer_id")
    assert rows.loc["a", "orders"] == 1
    assert rows.loc["b", "orders"] == 0  # a customer still, without lines now
    assert pd.isna(rows.loc["b", "last_order_at"])


def test_deleted_lines_are_forgotten_by_the_simulation(fresh_store: Engine) -> None:
    save_shop(fresh_store, small_shop(), facts={"loaded_at": "x"})
    refresh_features(fresh_store)
    with fresh_store.begin() as connection:
        connection.execute(text("DELETE FROM transaction_line WHERE invoice = '2'"))
        forget_features(connection)
    assert refresh_features(fresh_store).action == "rebuilt"
    stored = load_shop(fresh_store)
    assert_same(stored_features(fresh_store, stored.customers, AT), pandas_features(stored, AT))


def test_in_memory_aggregates_equal_the_group_by(fresh_store: Engine) -> None:
    shop = generate_demo_shop(300, 11, datetime(2026, 11, 20))
    save_shop(fresh_store, shop, facts={"loaded_at": "x"})
    refresh_features(fresh_store)
    features, spend = aggregate_lines(FreshLines(shop.transactions, shop.products), True)
    in_memory = features.set_index("customer_id").sort_index()
    by_sql = feature_rows(fresh_store).set_index("customer_id").loc[in_memory.index]
    pd.testing.assert_frame_equal(
        in_memory[by_sql.columns].astype({"orders": np.int64}),
        by_sql.astype({"orders": np.int64}),
        rtol=1e-9,
        check_dtype=False,
        check_index_type=False,
    )
    assert spend is not None
    keys = ["customer_id", "category"]
    pd.testing.assert_frame_equal(
        spend.sort_values(keys).reset_index(drop=True),
        category_spend_rows(fresh_store).sort_values(keys).reset_index(drop=True),
        rtol=1e-9,
    )


# ---------------------------------------------------------------------------------- real data


def _files(tmp_path: Path, path: Path, columns: dict[str, str], **options: object) -> FilesSource:
    return FilesSource(
        type="files",
        transactions=TableFile(path=path, columns=columns, **options),  # type: ignore[arg-type]
        quarantine=tmp_path / "quarantine",
    )


@pytest.mark.shared_data
def test_cdnow_features_equal_pandas(
    tmp_path: Path, shared_data: Path, fresh_store: Engine
) -> None:
    source = _files(
        tmp_path,
        shared_data / "cdnow" / "CDNOW_master.txt",
        {
            "customer_id": "customer_id",
            "invoiced_at": "date",
            "quantity": "number_of_cds",
            "amount": "dollar_value",
        },
        separator=r"\s+",
        date_format="%Y%m%d",
    )
    shop = load_files(source, tmp_path)
    assert shop.quarantined == {"non_positive_price": 80, "duplicate_line": 255}
    save_shop(fresh_store, shop, facts={"loaded_at": "x"})
    at = datetime(1998, 7, 1)
    # From the source's lines (quarantined ones were never loaded) and from the stored ones.
    want = pandas_features(shop, at)
    assert_same(pandas_features(load_shop(fresh_store), at), want)
    refresh_features(fresh_store)
    got = stored_features(fresh_store, shop.customers, at)
    assert_same(got, want)
    lines = shop.transactions
    total = float((lines["quantity"] * lines["unit_price"]).sum())
    assert got["monetary"].sum() == pytest.approx(total, abs=0.005)
    assert got["frequency"].gt(0).sum() == lines["customer_id"].nunique()
    save_shop(fresh_store, shop, facts={"loaded_at": "y"})
    refresh_features(fresh_store, lines=FreshLines(shop.transactions, shop.products))
    assert_same(stored_features(fresh_store, shop.customers, at), want)


@pytest.mark.shared_data
def test_online_retail_features_equal_pandas(tmp_path: Path, shared_data: Path) -> None:
    source = _files(
        tmp_path,
        shared_data / "online_retail" / "online_retail_2010_2011.parquet",
        {
            "invoice": "InvoiceNo",
            "customer_id": "CustomerID",
            "product_id": "StockCode",
            "quantity": "Quantity",
            "unit_price": "UnitPrice",
            "invoiced_at": "InvoiceDate",
            "description": "Description",
        },
    )
    shop = load_files(source, tmp_path)
    assert sum(shop.quarantined.values()) > 0
    with opened_store(f"sqlite:///{tmp_path / 'retail.db'}") as engine:
        save_shop(engine, shop, facts={"loaded_at": "x"})
        at = datetime(2012, 1, 1)
        want = pandas_features(shop, at)
        assert refresh_features(engine).action == "rebuilt"
        assert_same(stored_features(engine, shop.customers, at), want)
