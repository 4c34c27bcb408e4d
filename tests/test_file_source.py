"""The files source: column mapping, type conversion, quarantine of bad rows, clear errors."""

from __future__ import annotations

import gzip
import re
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from campaigns.config.schema import FilesSource, TableFile
from campaigns.errors import DataError
from store.frames import CUSTOMER_COLUMNS, PRODUCT_COLUMNS, TRANSACTION_COLUMNS
from store.sources.files import load_files

DATA = Path(__file__).parent / "data"

RETAIL_COLUMNS = {
    "invoice": "InvoiceNo",
    "product_id": "StockCode",
    "description": "Description",
    "quantity": "Quantity",
    "invoiced_at": "InvoiceDate",
    "unit_price": "UnitPrice",
    "customer_id": "CustomerID",
}
RETAIL_HEADER = (
    "'InvoiceNo', 'StockCode', 'Description', 'Quantity', 'InvoiceDate', 'UnitPrice', "
    "'CustomerID', 'Country'"
)
CUSTOMER_MAPPING = {
    "customer_id": "Customer ID",
    "email": "E-mail",
    "first_name": "First Name",
    "country": "Country",
    "signup_at": "Joined",
    "timezone": "Time Zone",
}
CDNOW_COLUMNS = {
    "customer_id": "customer_id",
    "invoiced_at": "date",
    "quantity": "number_of_cds",
    "amount": "dollar_value",
}


def files_source(tmp_path: Path, transactions: dict[str, Any], **tables: Any) -> FilesSource:
    """A files source with its quarantine in tmp_path (the tables as TableFile keyword dicts)."""
    return FilesSource(
        type="files",
        transactions=TableFile(**transactions),
        quarantine=tmp_path / "quarantine",
        **{name: TableFile(**spec) for name, spec in tables.items()},
    )


def retail(tmp_path: Path, **tables: Any) -> FilesSource:
    return files_source(
        tmp_path, {"path": Path("online_retail.csv"), "columns": RETAIL_COLUMNS}, **tables
    )


def quarantined_lines(path: Path) -> list[tuple[int, str]]:
    frame = pd.read_csv(path, dtype=str)
    return list(zip(frame["line"].astype(int), frame["reason"], strict=True))


# ------------------------------------------------------------------------------ good rows, types


def test_online_retail_layout_loads_good_rows_with_contract_types(tmp_path: Path) -> None:
    shop = load_files(retail(tmp_path), DATA)

    tx = shop.transactions
    assert list(tx.columns) == list(TRANSACTION_COLUMNS)
    assert tx["invoice"].tolist() == ["536365", "536365", "536381", "536382"]
    assert tx["customer_id"].tolist() == ["17850", "17850", "15311", "00042"]
    assert tx["product_id"].tolist() == ["85123A", "71053", "22086", "10002"]
    assert tx["quantity"].tolist() == [6, 6, 4, 12]
    assert tx["quantity"].dtype == np.int64
    assert tx["unit_price"].tolist() == [2.55, 3.39, 2.95, 0.85]
    assert tx["unit_price"].dtype == np.float64
    assert tx["invoiced_at"].dtype == np.dtype("datetime64[ns]")
    assert tx["invoiced_at"].tolist() == [
        pd.Timestamp("2010-12-01 08:26"),
        pd.Timestamp("2010-12-01 08:26"),
        pd.Timestamp("2010-12-01 09:45"),
        pd.Timestamp("2010-12-02 09:45"),
    ]

    # Without a customers file, every distinct id of the file is a customer (also those whose
    # lines were all set aside), signed up at their first purchase.
    customers = shop.customers
    assert list(customers.columns) == list(CUSTOMER_COLUMNS)
    assert customers["customer_id"].tolist() == ["17850", "13047", "14527", "15311", "00042"]
    assert customers["email"].isna().all()
    assert (customers["timezone"] == "UTC").all()
    signup = dict(zip(customers["customer_id"], customers["signup_at"], strict=True))
    assert signup["17850"] == pd.Timestamp("2010-12-01 08:26")
    assert signup["13047"] == pd.Timestamp("2010-12-01 08:34")
    assert signup["00042"] == pd.Timestamp("2010-12-02 09:45")

    products = shop.products.set_index("product_id")
    assert list(shop.products.columns) == list(PRODUCT_COLUMNS)
    assert products.index.tolist() == ["85123A", "71053", "22086", "10002"]
    assert products.loc["22086", "name"] == "PAPER CHAIN KIT\nVINTAGE"
    assert products.loc["10002", "price"] == 0.85
    assert products["category"].isna().all()


def test_each_bad_row_is_counted_and_written_with_its_source_line(tmp_path: Path) -> None:
    shop = load_files(retail(tmp_path), DATA)

    assert shop.quarantined == {
        "missing_customer_id": 1,
        "bad_date": 2,
        "bad_number": 1,
        "non_positive_price": 1,
        "non_positive_quantity": 1,
        "cancelled_invoice": 1,
    }
    target = tmp_path / "quarantine" / "transactions.csv"
    # Line 10-11 is one quoted, two-line row and line 12 is blank, so the last row is line 14.
    assert quarantined_lines(target) == [
        (4, "missing_customer_id"),
        (5, "bad_date"),
        (6, "bad_number"),
        (7, "non_positive_price"),
        (8, "non_positive_quantity"),
        (9, "cancelled_invoice"),
        (14, "bad_date"),
    ]
    written = pd.read_csv(target, dtype=str)
    assert list(written.columns) == [*RETAIL_HEADER.replace("'", "").split(", "), "line", "reason"]
    assert written["Quantity"].tolist()[2] == "six"
    assert written["CustomerID"].tolist()[-1] == "00042"
    source_lines = (DATA / "online_retail.csv").read_text().splitlines()
    assert source_lines[14 - 1].startswith("536383,")
    assert not (tmp_path / "quarantine" / "customers.csv").exists()


def test_first_reason_that_applies_wins(tmp_path: Path) -> None:
    path = tmp_path / "tx.csv"
    path.write_text(
        "inv,cust,when,qty,price\n"
        "1,,x,-1,0\n"  # no customer: only the first reason counts
        "C1,7,nope,x,x\n"
        "C2,7,2020-01-01,x,-3\n"
        "C3,7,2020-01-01,-2,-3\n"
        "C4,7,2020-01-01,-2,3\n"
        "C5,7,2020-01-01,2,3\n"
        "6,7,2020-01-01,2.5,3\n"
    )
    columns = {
        "invoice": "inv",
        "customer_id": "cust",
        "invoiced_at": "when",
        "quantity": "qty",
        "unit_price": "price",
    }
    shop = load_files(files_source(tmp_path, {"path": path, "columns": columns}), tmp_path)
    assert quarantined_lines(tmp_path / "quarantine" / "transactions.csv") == [
        (2, "missing_customer_id"),
        (3, "bad_date"),
        (4, "bad_number"),
        (5, "non_positive_price"),
        (6, "non_positive_quantity"),
        (7, "cancelled_invoice"),
        (8, "bad_number"),  # a fractional quantity
    ]
    assert shop.transactions.empty
    assert list(shop.transactions.columns) == list(TRANSACTION_COLUMNS)


def test_customers_file_with_traits_duplicates_and_unknown_customers(tmp_path: Path) -> None:
    customers = {
        "path": Path("retail_customers.csv"),
        "columns": CUSTOMER_MAPPING,
        "traits": ["Tier", "Score"],
    }
    shop = load_files(retail(tmp_path, customers=customers), DATA)

    frame = shop.customers
    assert list(frame.columns) == [*CUSTOMER_COLUMNS, "Tier", "Score"]
    assert shop.trait_columns == ["Tier", "Score"]
    assert frame["customer_id"].tolist() == ["17850", "00042", "13047", "14527"]
    assert frame["email"].tolist()[2] == "cat@example.com"  # the first of the duplicates
    assert frame["last_name"].isna().all()
    assert frame["timezone"].tolist() == ["Europe/London", "UTC", "Europe/London", "Europe/London"]
    assert frame["signup_at"].tolist() == [
        pd.Timestamp("2010-11-02"),
        pd.Timestamp("2010-11-03"),
        pd.Timestamp("2010-11-04"),
        pd.Timestamp("2010-11-05 10:30"),
    ]
    assert frame["Tier"].tolist() == ["gold", "silver", "gold", "bronze"]
    assert frame["Score"].dtype == np.float64
    assert frame["Score"].isna().tolist() == [False, True, False, False]

    assert quarantined_lines(tmp_path / "quarantine" / "customers.csv") == [
        (6, "missing_customer_id"),
        (7, "duplicate_customer_id"),
        (8, "bad_date"),
        (9, "bad_timezone"),
    ]
    # 15311 is not in the customers file.
    assert (10, "unknown_customer") in quarantined_lines(
        tmp_path / "quarantine" / "transactions.csv"
    )
    assert shop.quarantined["missing_customer_id"] == 2  # one customer row, one transaction
    assert shop.quarantined["unknown_customer"] == 1
    assert shop.quarantined["duplicate_customer_id"] == 1
    assert shop.transactions["customer_id"].tolist() == ["17850", "17850", "00042"]


def test_star_keeps_every_unmapped_column_as_a_trait(tmp_path: Path) -> None:
    customers = {"path": Path("retail_customers.csv"), "columns": CUSTOMER_MAPPING, "traits": ["*"]}
    shop = load_files(retail(tmp_path, customers=customers), DATA)
    assert shop.trait_columns == ["Tier", "Score", "Notes"]
    notes = shop.customers["Notes"]
    assert notes.iloc[0] == "first"
    assert notes.iloc[1:].isna().all()


def test_products_file_is_completed_from_the_transactions(tmp_path: Path) -> None:
    path = tmp_path / "products.csv"
    path.write_text(
        "sku,title,group,list_price\n"
        "85123A,Heart holder,decor,2.95\n"
        ",Nameless,decor,1\n"
        "85123A,Again,decor,1\n"
        "71053,,lighting,\n"
        "99999,Never sold,misc,abc\n"
    )
    products = {
        "path": path,
        "columns": {
            "product_id": "sku",
            "name": "title",
            "category": "group",
            "price": "list_price",
        },
    }
    shop = load_files(retail(tmp_path, products=products), DATA)
    frame = shop.products.set_index("product_id")
    assert frame.index.tolist() == ["85123A", "71053", "22086", "10002"]
    assert frame.loc["85123A"].tolist() == ["Heart holder", "decor", 2.95]
    assert frame.loc["71053"].tolist() == ["WHITE METAL LANTERN", "lighting", 3.39]
    assert quarantined_lines(tmp_path / "quarantine" / "products.csv") == [
        (3, "missing_product_id"),
        (4, "duplicate_product_id"),
        (6, "bad_number"),
    ]


def test_amount_quantity_and_default_invoice_with_a_regex_separator(tmp_path: Path) -> None:
    transactions = {
        "path": Path("cdnow_like.txt"),
        "separator": r"\s+",
        "date_format": "%Y%m%d",
        "columns": CDNOW_COLUMNS,
    }
    shop = load_files(files_source(tmp_path, transactions), DATA)
    tx = shop.transactions
    assert tx["customer_id"].tolist() == ["00001", "00002", "00002", "00003"]
    # Lines of one customer and day form one order.
    assert tx["invoice"].tolist() == [
        "00001-19970101",
        "00002-19970112",
        "00002-19970112",
        "00003-19970102",
    ]
    assert tx["product_id"].unique().tolist() == ["unknown"]
    assert tx["quantity"].tolist() == [1, 1, 5, 2]
    assert tx["unit_price"].tolist() == pytest.approx([11.77, 12.0, 15.4, 10.38])
    assert shop.products["product_id"].tolist() == ["unknown"]
    assert shop.quarantined == {"bad_date": 1, "non_positive_price": 1}
    assert quarantined_lines(tmp_path / "quarantine" / "transactions.csv") == [
        (6, "non_positive_price"),
        (7, "bad_date"),
    ]
    # Customers whose only lines were set aside are still customers.
    customers = shop.customers.set_index("customer_id")
    assert customers.index.tolist() == ["00001", "00002", "00003", "00004", "00005"]
    assert customers.loc["00004", "signup_at"] == pd.Timestamp("1997-01-01")
    assert pd.isna(customers.loc["00005", "signup_at"])


def test_tab_separated_customers_with_day_first_dates_and_numeric_traits(tmp_path: Path) -> None:
    customers = {
        "path": Path("personality_like.csv"),
        "separator": "\t",
        "date_format": "%d-%m-%Y",
        "columns": {"customer_id": "ID", "signup_at": "Dt_Customer"},
        "traits": ["Income", "Kidhome", "Year_Birth", "Response", "Education"],
    }
    transactions = {
        "path": Path("cdnow_like.txt"),
        "separator": r"\s+",
        "date_format": "%Y%m%d",
        "columns": CDNOW_COLUMNS,
    }
    shop = load_files(files_source(tmp_path, transactions, customers=customers), DATA)
    frame = shop.customers
    assert frame["customer_id"].tolist() == ["5524", "2174", "0042"]
    assert frame["signup_at"].tolist() == [
        pd.Timestamp("2012-09-04"),
        pd.Timestamp("2014-03-08"),
        pd.Timestamp("2013-08-21"),
    ]
    assert frame["Income"].dtype == np.float64
    assert frame["Income"].isna().tolist() == [False, True, False]
    assert frame["Kidhome"].dtype == np.int64
    assert frame["Year_Birth"].tolist() == [1957, 1954, 1965]
    assert frame["Education"].tolist() == ["Graduation", "Graduation", "PhD"]
    # No transaction belongs to these customers.
    assert shop.transactions.empty
    assert shop.quarantined == {"bad_date": 1, "non_positive_price": 1, "unknown_customer": 4}


def test_parquet_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "lines.parquet"
    pd.DataFrame(
        {
            "order": ["A1", "A1", "A2", "A3"],
            "client": ["007", "007", "010", None],
            "sku": ["p1", "p2", "p1", "p1"],
            "n": [1, 2, 3, 1],
            "price": [9.5, 4.25, -1.0, 2.0],
            "at": pd.to_datetime(
                ["2024-03-01 10:00", "2024-03-01 10:00", "2024-03-02 12:30", "2024-03-03 08:00"]
            ).tz_localize("Europe/Berlin"),
        }
    ).to_parquet(path)
    columns = {
        "invoice": "order",
        "customer_id": "client",
        "product_id": "sku",
        "quantity": "n",
        "unit_price": "price",
        "invoiced_at": "at",
    }
    shop = load_files(files_source(tmp_path, {"path": path, "columns": columns}), tmp_path)
    tx = shop.transactions
    assert tx["customer_id"].tolist() == ["007", "007"]
    assert tx["quantity"].tolist() == [1, 2]
    assert tx["unit_price"].tolist() == [9.5, 4.25]
    # Time-zone aware values become naive UTC.
    assert tx["invoiced_at"].tolist() == [pd.Timestamp("2024-03-01 09:00")] * 2
    assert shop.customers["customer_id"].tolist() == ["007", "010"]
    assert quarantined_lines(tmp_path / "quarantine" / "transactions.csv") == [
        (3, "non_positive_price"),
        (4, "missing_customer_id"),
    ]


def test_columns_with_our_names_need_no_mapping_and_tsv_gz_are_csv(tmp_path: Path) -> None:
    text = "customer_id\tinvoiced_at\tunit_price\n001\t2024-01-05T10:00:00+02:00\t3\n"
    with gzip.open(tmp_path / "tx.tsv.gz", "wt") as handle:
        handle.write(text)
    shop = load_files(files_source(tmp_path, {"path": Path("tx.tsv.gz")}), tmp_path)
    assert shop.transactions["customer_id"].tolist() == ["001"]
    assert shop.transactions["quantity"].tolist() == [1]
    assert shop.transactions["invoiced_at"].tolist() == [pd.Timestamp("2024-01-05 08:00")]
    assert shop.quarantined == {}


def test_stale_quarantine_file_is_removed_when_a_load_is_clean(tmp_path: Path) -> None:
    load_files(retail(tmp_path), DATA)
    target = tmp_path / "quarantine" / "transactions.csv"
    assert target.exists()
    good = tmp_path / "good.csv"
    good.write_text("customer_id,invoiced_at,amount\n1,2024-01-01,5\n")
    shop = load_files(files_source(tmp_path, {"path": good}), tmp_path)
    assert shop.quarantined == {}
    assert not target.exists()


def test_a_large_file_loads_in_seconds(tmp_path: Path) -> None:
    rows = 200_000
    rng = np.random.default_rng(0)
    path = tmp_path / "big.csv"
    pd.DataFrame(
        {
            "InvoiceNo": (rng.integers(500_000, 600_000, rows)).astype(str),
            "StockCode": rng.integers(10_000, 12_000, rows).astype(str),
            "Description": "ITEM",
            "Quantity": rng.integers(-2, 20, rows),
            "InvoiceDate": pd.Timestamp("2010-12-01")
            + pd.to_timedelta(rng.integers(0, 365 * 24 * 60, rows), unit="min"),
            "UnitPrice": rng.integers(0, 1000, rows) / 100,
            "CustomerID": rng.integers(10_000, 20_000, rows).astype(str),
            "Country": "United Kingdom",
        }
    ).to_csv(path, index=False, date_format="%m/%d/%Y %H:%M")
    source = files_source(tmp_path, {"path": path, "columns": RETAIL_COLUMNS})
    started = time.perf_counter()
    shop = load_files(source, tmp_path)
    elapsed = time.perf_counter() - started
    assert len(shop.transactions) + sum(shop.quarantined.values()) == rows
    assert elapsed < 10, f"loading {rows:,} lines took {elapsed:.1f}s"


# ------------------------------------------------------------------------------------- errors


def test_missing_file(tmp_path: Path) -> None:
    source = files_source(tmp_path, {"path": Path("nope.csv"), "columns": RETAIL_COLUMNS})
    message = f"transactions file not found: {tmp_path / 'nope.csv'}"
    with pytest.raises(DataError, match=f"^{re.escape(message)}$"):
        load_files(source, tmp_path)


def test_missing_customers_file(tmp_path: Path) -> None:
    source = retail(tmp_path, customers={"path": Path("absent.csv")})
    message = f"customers file not found: {DATA / 'absent.csv'}"
    with pytest.raises(DataError, match=f"^{re.escape(message)}$"):
        load_files(source, DATA)


def test_mapped_column_absent_from_the_file(tmp_path: Path) -> None:
    columns = {**RETAIL_COLUMNS, "invoiced_at": "Invoice Date"}
    source = files_source(tmp_path, {"path": Path("online_retail.csv"), "columns": columns})
    message = (
        f"transactions file {DATA / 'online_retail.csv'} has no column 'Invoice Date' "
        "(mapped by invoiced_at = 'Invoice Date' under [source.transactions.columns]); "
        f"its columns are: {RETAIL_HEADER}"
    )
    with pytest.raises(DataError, match=f"^{re.escape(message)}$"):
        load_files(source, DATA)


def test_required_mapping_missing(tmp_path: Path) -> None:
    columns = {k: v for k, v in RETAIL_COLUMNS.items() if k != "customer_id"}
    source = files_source(tmp_path, {"path": Path("online_retail.csv"), "columns": columns})
    message = (
        f"transactions file {DATA / 'online_retail.csv'} has no column for 'customer_id': "
        'add customer_id = "<column>" under [source.transactions.columns]; '
        f"its columns are: {RETAIL_HEADER}"
    )
    with pytest.raises(DataError, match=f"^{re.escape(message)}$"):
        load_files(source, DATA)


def test_price_mapping_missing(tmp_path: Path) -> None:
    columns = {k: v for k, v in RETAIL_COLUMNS.items() if k != "unit_price"}
    source = files_source(tmp_path, {"path": Path("online_retail.csv"), "columns": columns})
    message = (
        f"transactions file {DATA / 'online_retail.csv'} has no column for 'unit_price' or "
        "'amount': add unit_price = \"<column>\" (the price of one item) or "
        'amount = "<column>" (the line total) under [source.transactions.columns]; '
        f"its columns are: {RETAIL_HEADER}"
    )
    with pytest.raises(DataError, match=f"^{re.escape(message)}$"):
        load_files(source, DATA)


def test_customers_file_without_customer_id(tmp_path: Path) -> None:
    source = retail(tmp_path, customers={"path": Path("retail_customers.csv")})
    with pytest.raises(
        DataError,
        match=re.escape(
            "has no column for 'customer_id': add customer_id = \"<column>\" under "
            "[source.customers.columns]"
        ),
    ):
        load_files(source, DATA)


def test_unknown_mapping_key(tmp_path: Path) -> None:
    source = files_source(
        tmp_path, {"path": Path("online_retail.csv"), "columns": {"custmer_id": "CustomerID"}}
    )
    with pytest.raises(
        DataError, match=r"^unknown key 'custmer_id' under \[source\.transactions\.columns\]; "
    ):
        load_files(source, DATA)


def test_unknown_trait_column(tmp_path: Path) -> None:
    customers = {
        "path": Path("retail_customers.csv"),
        "columns": CUSTOMER_MAPPING,
        "traits": ["Age"],
    }
    with pytest.raises(DataError, match=r"has no column 'Age' \(listed in traits"):
        load_files(retail(tmp_path, customers=customers), DATA)


def test_unreadable_files(tmp_path: Path) -> None:
    (tmp_path / "broken.parquet").write_text("this is not parquet")
    source = files_source(tmp_path, {"path": Path("broken.parquet")})
    message = f"cannot read transactions file {tmp_path / 'broken.parquet'} as Parquet: "
    with pytest.raises(DataError, match=f"^{re.escape(message)}"):
        load_files(source, tmp_path)

    (tmp_path / "ragged.csv").write_text("a,b\n1,2\n3,4,5\n")
    source = files_source(tmp_path, {"path": Path("ragged.csv")})
    with pytest.raises(DataError, match=r"as CSV: .*Expected 2 fields in line 3, saw 3"):
        load_files(source, tmp_path)

    (tmp_path / "latin.csv").write_bytes("customer_id,name\n1,Jos\xe9\n".encode("latin-1"))
    source = files_source(tmp_path, {"path": Path("latin.csv")})
    with pytest.raises(DataError, match=r"as CSV: 'utf-8' codec can't decode"):
        load_files(source, tmp_path)


def test_unknown_extension(tmp_path: Path) -> None:
    (tmp_path / "data.xlsx").write_text("")
    source = files_source(tmp_path, {"path": Path("data.xlsx")})
    message = (
        f"cannot tell the format of transactions file {tmp_path / 'data.xlsx'} from its "
        'extension; set format = "csv" or format = "parquet" under [source.transactions]'
    )
    with pytest.raises(DataError, match=f"^{re.escape(message)}$"):
        load_files(source, tmp_path)


# ---------------------------------------------------------------------------------- real data


@pytest.mark.shared_data
def test_cdnow_master(tmp_path: Path, shared_data: Path) -> None:
    transactions = {
        "path": shared_data / "cdnow" / "CDNOW_master.txt",
        "separator": r"\s+",
        "date_format": "%Y%m%d",
        "columns": CDNOW_COLUMNS,
    }
    source = files_source(tmp_path, transactions)
    # By default the 255 lines that repeat an earlier line exactly are set aside too.
    assert load_files(source, tmp_path).quarantined == {
        "non_positive_price": 80,
        "duplicate_line": 255,
    }
    # CDNOW has no invoice numbers: two identical lines may be two orders. Kept, the totals are
    # those of SOURCE.md.
    shop = load_files(source.model_copy(update={"duplicates": "keep"}), tmp_path)
    tx = shop.transactions
    # 69,659 lines in; 80 of them have a dollar value of 0.00 and are set aside.
    assert shop.quarantined == {"non_positive_price": 80}
    assert len(tx) == 69_659 - 80
    assert len(shop.customers) == 23_570  # every customer, also the 68 with only $0 lines
    assert tx["customer_id"].nunique() == 23_570 - 68
    assert (tx["unit_price"] * tx["quantity"]).sum() == pytest.approx(2_500_315.63, abs=0.005)
    assert tx["quantity"].sum() == 167_881 - 80
    assert tx["invoiced_at"].min() == pd.Timestamp("1997-01-01")
    assert tx["invoiced_at"].max() == pd.Timestamp("1998-06-30")
    assert tx["customer_id"].iloc[0] == "00001"
    written = pd.read_csv(tmp_path / "quarantine" / "transactions.csv", dtype=str)
    assert (written["dollar_value"] == "0.00").all()
    lines = (shared_data / "cdnow" / "CDNOW_master.txt").read_text().splitlines()
    first = int(written["line"].iloc[0])
    assert lines[first - 1].split() == written.iloc[0, :4].tolist()


@pytest.mark.shared_data
def test_customer_personality_as_customers_file(tmp_path: Path, shared_data: Path) -> None:
    customers = {
        "path": shared_data / "customer_personality" / "marketing_campaign.csv",
        "separator": "\t",
        "date_format": "%d-%m-%Y",
        "columns": {"customer_id": "ID", "signup_at": "Dt_Customer"},
        "traits": ["Income", "Kidhome", "Year_Birth", "Response", "Education"],
    }
    transactions = {
        "path": Path("cdnow_like.txt"),
        "separator": r"\s+",
        "date_format": "%Y%m%d",
        "columns": CDNOW_COLUMNS,
    }
    shop = load_files(files_source(tmp_path, transactions, customers=customers), DATA)
    frame = shop.customers
    assert len(frame) == 2_240
    assert frame["customer_id"].is_unique
    assert "customers.csv" not in [p.name for p in (tmp_path / "quarantine").iterdir()]
    assert frame["Income"].isna().sum() == 24
    assert frame["Income"].max() == 666_666
    assert frame["Year_Birth"].min() == 1893
    assert frame["Response"].sum() == 334
    assert frame["Kidhome"].dtype == np.int64
    assert frame["signup_at"].min() == pd.Timestamp("2012-07-30")
    assert frame["signup_at"].max() == pd.Timestamp("2014-06-29")
    assert frame["Education"].value_counts()["PhD"] == 486


def test_infinite_and_fractional_numbers_are_bad_numbers(tmp_path: Path) -> None:
    path = tmp_path / "tx.csv"
    path.write_text(
        "customer_id,invoiced_at,quantity,unit_price\n"
        "1,2024-01-01,inf,2\n"
        "1,2024-01-01,1,-inf\n"
        "1,2024-01-01,1.5,2\n"
        "1,2024-01-01,2.0,2\n"
    )
    shop = load_files(files_source(tmp_path, {"path": path}), tmp_path)
    assert shop.quarantined == {"bad_number": 3}
    assert shop.transactions["quantity"].tolist() == [2]


def test_events_feed_loads_and_quarantines(tmp_path: Path) -> None:
    from campaigns.config.schema import FilesSource, TableFile

    (tmp_path / "tx.csv").write_text(
        "customer,when,paid\na,2024-01-01,3\nb,2024-01-02,4\n", encoding="utf-8"
    )
    (tmp_path / "events.csv").write_text(
        "who,what,at\na,cart_abandoned,2024-02-01 10:00\nzz,cart_abandoned,2024-02-01 11:00\n"
        "b,,2024-02-01 12:00\nb,viewed,not a date\n",
        encoding="utf-8",
    )
    source = FilesSource(
        type="files",
        transactions=TableFile(
            path=Path("tx.csv"),
            columns={"customer_id": "customer", "invoiced_at": "when", "amount": "paid"},
        ),
        events=TableFile(
            path=Path("events.csv"),
            columns={"customer_id": "who", "event": "what", "occurred_at": "at"},
        ),
    )
    shop = load_files(source, tmp_path)
    assert shop.events["customer_id"].tolist() == ["a"]
    assert shop.events["occurred_at"].tolist() == [pd.Timestamp("2024-02-01 10:00")]
    assert shop.quarantined == {"missing_event": 1, "bad_date": 1, "unknown_customer": 1}
    quarantine = pd.read_csv(tmp_path / "quarantine" / "events.csv", dtype=str)
    assert quarantine[["line", "reason"]].values.tolist() == [
        ["3", "unknown_customer"],
        ["4", "missing_event"],
        ["5", "bad_date"],
    ]


def test_a_customers_file_alone_with_row_ids(tmp_path: Path) -> None:
    from campaigns.config.schema import FilesSource, TableFile

    (tmp_path / "clients.csv").write_text("Fresh,Milk\n10,3\n\n7,1\n", encoding="utf-8")
    source = FilesSource(
        type="files",
        customers=TableFile(path=Path("clients.csv"), row_ids=True, traits=["*"]),
    )
    shop = load_files(source, tmp_path)
    # Row numbers count data rows from 1; the blank line still counts, as in the file.
    assert shop.customers["customer_id"].tolist() == ["1", "3"]
    assert shop.customers["Fresh"].tolist() == [10, 7]
    assert shop.transactions.empty
    assert shop.products.empty


def test_a_files_source_needs_a_table(tmp_path: Path) -> None:
    from campaigns.config import load_config
    from campaigns.errors import ConfigError

    path = tmp_path / "config.toml"
    path.write_text('[source]\ntype = "files"\n\n[channels.export]\ntype = "file"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value) == (
        f"{path}:1: source: needs [source.transactions], [source.customers] or both; "
        "neither is given"
    )


def test_exact_duplicate_lines_are_quarantined_and_counted(tmp_path: Path) -> None:
    (tmp_path / "sales.csv").write_text(
        "order,who,sku,qty,price,when\n"
        "A1,c1,p1,1,2.50,2024-01-02 10:00\n"
        "A1,c1,p1,1,2.50,2024-01-02 10:00\n"  # line 3: a repeat of line 2
        "A1,c1,p2,1,2.50,2024-01-02 10:00\n"
        "A2,c2,p1,2,2.50,2024-01-03 11:00\n"
        "A1,c1,p1,1,2.50,2024-01-02 10:00\n"  # line 6: again
        "A3,,p1,1,2.50,2024-01-04 11:00\n"
        "A3,,p1,1,2.50,2024-01-04 11:00\n",  # a repeat, but first of all without a customer
        encoding="utf-8",
    )
    columns = {
        "invoice": "order",
        "customer_id": "who",
        "product_id": "sku",
        "quantity": "qty",
        "unit_price": "price",
        "invoiced_at": "when",
    }
    source = files_source(tmp_path, {"path": tmp_path / "sales.csv", "columns": columns})
    shop = load_files(source, tmp_path)
    assert shop.quarantined == {"missing_customer_id": 2, "duplicate_line": 2}
    assert len(shop.transactions) == 3
    written = pd.read_csv(tmp_path / "quarantine" / "transactions.csv", dtype=str)
    assert written[["line", "reason"]].values.tolist() == [
        ["3", "duplicate_line"],
        ["6", "duplicate_line"],
        ["7", "missing_customer_id"],
        ["8", "missing_customer_id"],
    ]
    kept = load_files(source.model_copy(update={"duplicates": "keep"}), tmp_path)
    assert kept.quarantined == {"missing_customer_id": 2}
    assert len(kept.transactions) == 5


def test_load_prints_the_duplicate_count(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from cli.main import cli

    (tmp_path / "sales.csv").write_text(
        "who,qty,amount,when\nc1,1,5,2024-01-02\nc1,1,5,2024-01-02\nc2,1,7,2024-01-02\n",
        encoding="utf-8",
    )
    (tmp_path / "config.toml").write_text(
        '[source]\ntype = "files"\n[source.transactions]\npath = "sales.csv"\n'
        '[source.transactions.columns]\ncustomer_id = "who"\nquantity = "qty"\n'
        'amount = "amount"\ninvoiced_at = "when"\n[channels.export]\ntype = "file"\n',
        encoding="utf-8",
    )
    result = CliRunner().invoke(cli, ["load", "-c", str(tmp_path / "config.toml")])
    assert result.output == (
        "Loaded 2 customers, 1 products, 2 transaction lines.\nQuarantined rows: duplicate_line 1\n"
    )


@pytest.mark.shared_data
def test_online_retail_duplicates_equal_pandas(tmp_path: Path, shared_data: Path) -> None:
    path = shared_data / "online_retail" / "online_retail_2010_2011.parquet"
    columns = {
        "invoice": "InvoiceNo",
        "customer_id": "CustomerID",
        "product_id": "StockCode",
        "quantity": "Quantity",
        "unit_price": "UnitPrice",
        "invoiced_at": "InvoiceDate",
        "description": "Description",
    }
    shop = load_files(files_source(tmp_path, {"path": path, "columns": columns}), tmp_path)
    raw = pd.read_parquet(path)
    # A repeat is counted as a duplicate when no earlier reason applies to it.
    earlier = (
        raw["CustomerID"].isna()
        | (raw["UnitPrice"] <= 0)
        | (raw["Quantity"] <= 0)
        | raw["InvoiceNo"].str.startswith("C")
    )
    expected = int((raw.duplicated() & ~earlier).sum())
    assert shop.quarantined["duplicate_line"] == expected == 5_192
