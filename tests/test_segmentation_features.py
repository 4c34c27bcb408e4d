"""RFM features from a transaction log, checked against values worked out by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest

from segmentation import RFM_COLUMNS, rfm_features
from segmentation.features import category_shares
from segmentation.traits import trait_features

AT = datetime(2024, 7, 1)


@pytest.fixture
def customers() -> pd.DataFrame:
    # Deliberately not in id order: the output keeps this order.
    return pd.DataFrame(
        {
            "customer_id": ["C", "A", "B"],
            "email": ["c@example.com", "a@example.com", "b@example.com"],
            "signup_at": pd.to_datetime(["2024-05-01", "2024-01-01", "2024-03-01"]),
        }
    )


@pytest.fixture
def transactions() -> pd.DataFrame:
    rows = [
        # A: invoice 1 has two lines (counts once), invoice 2 one line; invoice 9 is after AT.
        ("1", "A", "p1", 2, 10.0, "2024-02-01 00:00"),
        ("1", "A", "p2", 1, 5.0, "2024-02-01 00:00"),
        ("2", "A", "p1", 1, 15.0, "2024-06-01 00:00"),
        ("9", "A", "p3", 10, 100.0, "2024-07-15 00:00"),
        # B bought before signing up (tenure counts from the purchase), last at noon the day
        # before AT.
        ("3", "B", "p2", 3, 20.0, "2024-02-15 00:00"),
        ("4", "B", "p1", 1, 40.0, "2024-06-30 12:00"),
        # Z is not a known customer.
        ("5", "Z", "p1", 1, 99.0, "2024-06-01 00:00"),
        # C never buys.
    ]
    frame = pd.DataFrame(
        rows,
        columns=["invoice", "customer_id", "product_id", "quantity", "unit_price", "invoiced_at"],
    )
    frame["invoiced_at"] = pd.to_datetime(frame["invoiced_at"])
    return frame


# By hand, at 2024-07-01 00:00 (2024 is a leap year):
# A: last 06-01 -> 30 days; invoices {1, 2}; 2*10 + 5 + 15 = 40; signup 01-01 is before the first
#    purchase -> 182 days; 40 / 2 = 20. Invoice 9 (07-15) is ignored.
# B: last 06-30 12:00 -> 0.5 days; invoices {3, 4}; 60 + 40 = 100; first purchase 02-15 is before
#    signup 03-01 -> 15 + 122 = 137 days; 100 / 2 = 50.
# C: no purchase; signed up 05-01 -> 61 days of tenure, and recency = tenure = 61.
EXPECTED = pd.DataFrame(
    {
        "recency": [61.0, 30.0, 0.5],
        "frequency": [0.0, 2.0, 2.0],
        "monetary": [0.0, 40.0, 100.0],
        "tenure": [61.0, 182.0, 137.0],
        "average_order_value": [0.0, 20.0, 50.0],
    },
    index=pd.Index(["C", "A", "B"], name="customer_id"),
)


def test_rfm_matches_hand_computed_values(
    transactions: pd.DataFrame, customers: pd.DataFrame
) -> None:
    features = rfm_features(transactions, customers, AT)

    pd.testing.assert_frame_equal(features, EXPECTED, check_index_type=False)
    assert tuple(features.columns) == RFM_COLUMNS
    assert all(dtype == "float64" for dtype in features.dtypes)


def test_purchases_after_at_are_ignored_and_an_earlier_at_sees_less(
    transactions: pd.DataFrame, customers: pd.DataFrame
) -> None:
    late = rfm_features(transactions, customers, datetime(2024, 8, 1))
    early = rfm_features(transactions, customers, datetime(2024, 3, 1))

    # By August invoice 9 (10 * 100 on 07-15) counts: 17 days ago.
    assert late.loc["A"].tolist() == [17.0, 3.0, 1040.0, 213.0, 1040.0 / 3]
    # On 03-01 only invoice 1 (A) and 3 (B) exist; C has not signed up yet (clipped to 0).
    assert early.loc["A"].tolist() == [29.0, 1.0, 25.0, 60.0, 25.0]
    assert early.loc["B"].tolist() == [15.0, 1.0, 60.0, 15.0, 60.0]
    assert early.loc["C"].tolist() == [0.0, 0.0, 0.0, 0.0, 0.0]


def test_a_purchase_exactly_at_at_counts(
    transactions: pd.DataFrame, customers: pd.DataFrame
) -> None:
    features = rfm_features(transactions, customers, datetime(2024, 6, 1))

    assert features.loc["A", "recency"] == 0.0
    assert features.loc["A", "frequency"] == 2.0


def test_timezone_aware_at_is_converted_to_utc(
    transactions: pd.DataFrame, customers: pd.DataFrame
) -> None:
    berlin_summer = timezone(timedelta(hours=2))
    aware = rfm_features(transactions, customers, datetime(2024, 7, 1, 2, tzinfo=berlin_summer))
    utc = rfm_features(transactions, customers, datetime(2024, 7, 1, tzinfo=UTC))

    pd.testing.assert_frame_equal(aware, EXPECTED, check_index_type=False)
    pd.testing.assert_frame_equal(utc, EXPECTED, check_index_type=False)


def test_no_transactions_at_all(customers: pd.DataFrame, transactions: pd.DataFrame) -> None:
    features = rfm_features(transactions.iloc[:0], customers, AT)

    assert features["frequency"].tolist() == [0.0, 0.0, 0.0]
    assert features["recency"].tolist() == features["tenure"].tolist() == [61.0, 182.0, 122.0]


def test_duplicate_customer_ids_are_rejected(
    transactions: pd.DataFrame, customers: pd.DataFrame
) -> None:
    doubled = pd.concat([customers, customers.iloc[[1]]])

    with pytest.raises(
        ValueError, match=r"^customers.customer_id must be unique; repeated: \['A'\]$"
    ):
        rfm_features(transactions, doubled, AT)


# ------------------------------------------------------------------- returns and cancellations


def test_returns_and_cancellations_reduce_spend_but_are_not_orders(
    transactions: pd.DataFrame, customers: pd.DataFrame
) -> None:
    extra = pd.DataFrame(
        [
            # A returns one item of invoice 2 on 06-20: a negative line, not an order.
            ("R1", "A", "p1", -1, 15.0, "2024-06-20 00:00"),
            # B's invoice C7 is a cancellation written with a positive quantity: a refund too.
            ("C7", "B", "p1", 1, 10.0, "2024-06-30 18:00"),
        ],
        columns=transactions.columns,
    ).astype({"invoiced_at": "datetime64[ns]"})
    features = rfm_features(pd.concat([transactions, extra], ignore_index=True), customers, AT)

    # A: 40 - 15 = 25 spent; still two orders, last order 06-01 (30 days), not the return.
    assert features.loc["A"].tolist() == [30.0, 2.0, 25.0, 182.0, 12.5]
    # B: 100 - 10 = 90; the cancellation neither counts as an order nor refreshes recency.
    assert features.loc["B"].tolist() == [0.5, 2.0, 90.0, 137.0, 45.0]


# ------------------------------------------------------------------------------ category shares


def test_category_shares(transactions: pd.DataFrame, customers: pd.DataFrame) -> None:
    products = pd.DataFrame(
        {"product_id": ["p1", "p2"], "name": ["Beans", "Tea"], "category": ["Coffee", "Loose Tea"]}
    )
    shares = category_shares(transactions, customers, products, AT)

    # p3 is not in the catalogue: "other". A: p1 20 + 15, p2 5 -> 35/40 and 5/40 (invoice 9 with
    # p3 is after AT, so "other" has no spend up to AT and is left out). B: p2 60, p1 40.
    assert shares.columns.tolist() == ["share_coffee", "share_loose_tea"]
    assert shares.loc["A"].tolist() == [35 / 40, 5 / 40]
    assert shares.loc["B"].tolist() == [0.4, 0.6]
    assert shares.loc["C"].tolist() == [0.0, 0.0]
    later = category_shares(transactions, customers, products, datetime(2024, 8, 1))
    assert later.columns.tolist() == ["share_coffee", "share_loose_tea", "share_other"]
    assert later.loc["A", "share_other"] == pytest.approx(1000 / 1040)


# --------------------------------------------------------------------- customer table features


def test_trait_features_derive_age_children_and_total_spend() -> None:
    people = pd.DataFrame(
        {
            "customer_id": ["1", "2"],
            "Year_Birth": [1980, 1995],
            "Kidhome": [1, 0],
            "Teenhome": [1, 0],
            "MntWines": [100, 5],
            "MntMeat": [50, "n/a"],
            "Income": [50_000, None],
            "Education": ["PhD", None],
        }
    )
    traits = trait_features(
        people,
        ["Income"],
        {"age": "Year_Birth", "children": ["Kidhome", "Teenhome"], "total_spend": ["MntWines"]},
        ["Education"],
        at=datetime(2024, 7, 1),
    )

    assert traits.columns.tolist() == ["Income", "age", "children", "total_spend", "Education"]
    assert traits["age"].tolist() == [44.0, 29.0]
    assert traits["children"].tolist() == [2.0, 0.0]
    assert traits["Income"].isna().tolist() == [False, True]
    assert traits["Education"].tolist()[0] == "PhD"
    assert pd.isna(traits["Education"].tolist()[1])
    # A value that is not a number becomes missing (then imputed and counted).
    spend = trait_features(people, derived={"total_spend": ["MntWines", "MntMeat"]})
    assert spend["total_spend"].tolist()[0] == 150.0
    assert np.isnan(spend["total_spend"].tolist()[1])


def test_trait_features_name_a_missing_column() -> None:
    people = pd.DataFrame({"customer_id": ["1"], "Income": [1.0]})
    with pytest.raises(
        KeyError, match=r"customers have no column\(s\) \['Fresh'\]; their columns are: "
    ):
        trait_features(people, ["Income", "Fresh"])


def test_a_shared_invoice_number_counts_once_for_each_customer(
    transactions: pd.DataFrame, customers: pd.DataFrame
) -> None:
    # B also appears on A's invoice 1 (two lines): one more order for B, none more for A.
    shared = pd.DataFrame(
        [("1", "B", "p1", 1, 5.0, "2024-02-01"), ("1", "B", "p2", 1, 5.0, "2024-02-01")],
        columns=transactions.columns,
    ).astype({"invoiced_at": "datetime64[ns]"})
    features = rfm_features(pd.concat([transactions, shared], ignore_index=True), customers, AT)

    assert features["frequency"].tolist() == [0.0, 2.0, 3.0]
