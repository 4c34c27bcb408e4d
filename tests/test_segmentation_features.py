"""RFM features from a transaction log, checked against values worked out by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pandas as pd
import pytest

from segmentation import RFM_COLUMNS, rfm_features

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
