"""``campaign data profile``: every figure equals the plain pandas computation, on the real
Online Retail log and the Customer Personality table; the CLI prints it, as JSON too, and
draws an HTML page."""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from campaigns.config.schema import FilesSource, TableFile
from campaigns.data_profile.commands import profile_shop
from campaigns.data_profile.tables import profile_table
from cli.main import cli
from store.sources.files import load_files


def assert_profile_is_pandas(frame: pd.DataFrame, profile: dict) -> None:
    """Every figure of ``profile_table(frame)`` against pandas on ``frame``."""
    assert profile["rows"] == len(frame)
    assert profile["columns"] == frame.shape[1]
    assert profile["duplicate_rows"] == int(frame.duplicated().sum())
    for column in profile["column_profiles"]:
        values = frame[column["name"]]
        assert column["missing"] == int(values.isna().sum()), column["name"]
        assert column["distinct"] == int(values.nunique()), column["name"]
        if column["type"] != "number":
            continue
        numbers = values.astype(float)
        q1, q3 = numbers.quantile(0.25), numbers.quantile(0.75)
        low, high = q1 - 1.5 * (q3 - q1), q3 + 1.5 * (q3 - q1)
        expected = {
            "mean": numbers.mean(),
            "std": numbers.std(),
            "min": numbers.min(),
            "q1": q1,
            "median": numbers.median(),
            "q3": q3,
            "max": numbers.max(),
            "skew": numbers.skew(),
            "outliers": int(((numbers < low) | (numbers > high)).sum()),
        }
        for key, value in expected.items():
            if pd.isna(value):  # a constant column has no skew: null, not NaN
                assert column[key] is None, (column["name"], key)
                continue
            assert column[key] == pytest.approx(value, rel=1e-9), (column["name"], key)
        counts, _ = np.histogram(numbers.dropna(), bins=20)
        assert column["histogram"]["counts"] == counts.tolist()
    numeric = [c["name"] for c in profile["column_profiles"] if c["type"] == "number"]
    numeric = [c for c in numeric if frame[c].nunique() > 1]
    if len(numeric) >= 2:
        np.testing.assert_allclose(
            profile["correlations"]["pearson"], frame[numeric].astype(float).corr().to_numpy()
        )


def test_duplicate_rows_count_like_pandas_with_missing_values() -> None:
    frame = pd.DataFrame(
        {"a": ["x", "x", None, None, "y"], "b": [1.0, 1.0, np.nan, np.nan, 2.0], "c": [1] * 5}
    )
    assert profile_table(frame)["duplicate_rows"] == int(frame.duplicated().sum()) == 2


@pytest.mark.shared_data
def test_online_retail_profile_equals_pandas(shared_data: Path, tmp_path: Path) -> None:
    source = FilesSource(
        type="files",
        transactions=TableFile(
            path=shared_data / "online_retail" / "online_retail_2010_2011.parquet",
            columns={
                "invoice": "InvoiceNo",
                "customer_id": "CustomerID",
                "product_id": "StockCode",
                "quantity": "Quantity",
                "unit_price": "UnitPrice",
                "invoiced_at": "InvoiceDate",
                "description": "Description",
            },
        ),
        quarantine=tmp_path / "quarantine",
    )
    shop = load_files(source, tmp_path)
    profile = profile_shop(shop, datetime(2011, 12, 10), shop.quarantined)
    for name in ("customers", "products", "transactions"):
        assert_profile_is_pandas(getattr(shop, name), profile["tables"][name])

    tx = shop.transactions
    log = profile["transaction_log"]
    amount = tx["quantity"] * tx["unit_price"]
    assert log["first"] == tx["invoiced_at"].min().isoformat()
    assert log["last"] == tx["invoiced_at"].max().isoformat()
    assert log["invoices"] == tx["invoice"].nunique()
    assert log["revenue"] == pytest.approx(amount.sum())
    by_month = amount.groupby(tx["invoiced_at"].dt.strftime("%Y-%m")).sum()
    assert [m["month"] for m in log["revenue_by_month"]] == by_month.index.tolist()
    np.testing.assert_allclose([m["revenue"] for m in log["revenue_by_month"]], by_month)
    orders = tx.groupby("customer_id")["invoice"].nunique()
    assert log["orders_per_customer"]["mean"] == pytest.approx(orders.mean())
    assert log["orders_per_customer"]["median"] == orders.median()
    assert log["orders_per_customer"]["max"] == orders.max()
    assert log["orders_per_customer"]["one_order_share"] == pytest.approx((orders == 1).mean())
    # The cancellations and returns were quarantined: none is loaded, and they are counted
    # against every line of the file.
    assert log["returns"]["lines"] == 0
    raw = pd.read_parquet(source.transactions.path)  # type: ignore[union-attr]
    assert log["returns"]["quarantined"] == (
        shop.quarantined.get("cancelled_invoice", 0) + shop.quarantined["non_positive_quantity"]
    )
    assert log["returns"]["quarantined_share"] == pytest.approx(
        log["returns"]["quarantined"] / len(raw)
    )
    assert profile["warnings"] == []


@pytest.mark.shared_data
def test_customer_personality_profile_equals_pandas(shared_data: Path, tmp_path: Path) -> None:
    source = FilesSource(
        type="files",
        customers=TableFile(
            path=shared_data / "customer_personality" / "marketing_campaign.csv",
            separator="\t",
            date_format="%d-%m-%Y",
            columns={"customer_id": "ID", "signup_at": "Dt_Customer"},
            traits=["*"],
        ),
        quarantine=tmp_path / "quarantine",
    )
    shop = load_files(source, tmp_path)
    profile = profile_shop(shop, datetime(2014, 7, 1))
    customers = profile["tables"]["customers"]
    assert_profile_is_pandas(shop.customers, customers)
    income = next(c for c in customers["column_profiles"] if c["name"] == "Income")
    assert income["missing"] == 24  # SOURCE.md
    assert profile["transaction_log"] is None


def test_profile_command(tmp_path: Path) -> None:
    (tmp_path / "sales.csv").write_text(
        "who,qty,amount,when\nc1,1,5,2024-01-02\nc1,1,5,2024-01-02\nc2,2,7,2024-02-03\n"
        "c1,1,9,2024-03-04\n",
        encoding="utf-8",
    )
    config = tmp_path / "config.toml"
    config.write_text(
        '[source]\ntype = "files"\n[source.transactions]\npath = "sales.csv"\n'
        '[source.transactions.columns]\ncustomer_id = "who"\nquantity = "qty"\n'
        'amount = "amount"\ninvoiced_at = "when"\n[channels.export]\ntype = "file"\n',
        encoding="utf-8",
    )
    runner = CliRunner()
    text = runner.invoke(
        cli, ["data", "profile", "-c", str(config), "--at", "2024-12-31", "--html", "p.html"]
    )
    assert text.exit_code == 0, text.output
    lines = text.output.splitlines()
    assert lines[:7] == [
        "Customers: 2 rows, 7 columns, 0 exact duplicate rows; missing values: email 2, "
        "first_name 2, last_name 2, country 2.",
        "Products: 1 rows, 4 columns, 0 exact duplicate rows; missing values: category 1.",
        "Transactions: 3 rows, 6 columns, 0 exact duplicate rows; missing values: none.",
        "Transactions from 2024-01-02 to 2024-03-04: 3 lines, 3 invoices, 2 customers, "
        "revenue 21.00.",
        "Orders per customer: mean 1.50, median 1.5, 90th percentile 1.9, max 2; 50.0% ordered "
        "once.",
        "Returns: 0 loaded lines (0.00%) are returns or cancellations; the load set aside 0 more "
        "(0.00% of the source's lines).",
        "Quarantined by the last load: duplicate_line 1.",
    ]
    assert " ".join(text.output.split()).endswith(
        "Warning: --at 2024-12-31 is 302 days after the last transaction (2024-03-04): every "
        "recency includes those days, so 'recent' and 'lapsed' compare customers as of a time "
        "the data does not cover; use --at 2024-03-05 to see them as of the end of the data "
        "Wrote p.html"
    )
    assert lines[-1] == "Wrote p.html"
    page = Path("p.html").read_text(encoding="utf-8")
    Path("p.html").unlink()
    images = re.findall(r"<img alt='([^']+)' src='data:image/png;base64,", page)
    assert images == [
        "Distribution of each numeric products column",
        "Outliers of each numeric products column",
        "Distribution of each numeric transactions column",
        "Outliers of each numeric transactions column",
        "Correlations of transactions columns",
        "Revenue by month",
        "Orders per customer",
    ]
    data = json.loads(
        runner.invoke(cli, ["data", "profile", "-c", str(config), "--format", "json"]).output
    )
    assert set(data) == {"at", "tables", "transaction_log", "quarantined", "warnings"}
    assert data["quarantined"] == {"duplicate_line": 1}
    assert data["tables"]["transactions"]["rows"] == 3
