"""The synthetic demo shop: deterministic, well-formed, and behaving as its latent groups say."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from store.frames import CUSTOMER_COLUMNS, PRODUCT_COLUMNS, TRANSACTION_COLUMNS, ShopData
from store.sources.demo import (
    GROUP_SHARES,
    HOLDOUT_FACTOR,
    TRUE_CONVERSION_BASE,
    TRUE_VARIANT_LIFT,
    generate_demo_shop,
    response_probability,
    simulate_conversions,
    true_probability,
)

END = datetime(2025, 6, 30, 12, 0, 0)
SIZE = 2_000
TRAITS = ["age", "gender", "income", "children", "latent_group"]
TIMEZONES = {
    "GB": "Europe/London",
    "DE": "Europe/Berlin",
    "FR": "Europe/Paris",
    "US": "America/New_York",
    "ES": "Europe/Madrid",
    "NL": "Europe/Amsterdam",
}


@pytest.fixture(scope="module")
def shop() -> ShopData:
    return generate_demo_shop(SIZE, seed=11, end=END)


@pytest.fixture(scope="module")
def per_customer(shop: ShopData) -> pd.DataFrame:
    """Recency (days), frequency (orders), monetary and average order value, with the group."""
    tx = shop.transactions.assign(amount=lambda t: t["quantity"] * t["unit_price"])
    orders = tx.groupby("invoice").agg(
        customer_id=("customer_id", "first"),
        at=("invoiced_at", "first"),
        amount=("amount", "sum"),
    )
    rfm = orders.groupby("customer_id").agg(
        last=("at", "max"), frequency=("at", "size"), monetary=("amount", "sum")
    )
    rfm["recency"] = (pd.Timestamp(END) - rfm["last"]).dt.total_seconds() / 86_400
    rfm["aov"] = rfm["monetary"] / rfm["frequency"]
    groups = shop.customers.set_index("customer_id")[["latent_group", "signup_at"]]
    return rfm.join(groups, how="right")


# ------------------------------------------------------------------------------- determinism


def test_same_seed_gives_identical_frames(shop: ShopData) -> None:
    again = generate_demo_shop(SIZE, seed=11, end=END)
    assert_frame_equal(again.customers, shop.customers)
    assert_frame_equal(again.products, shop.products)
    assert_frame_equal(again.transactions, shop.transactions)
    assert again.quarantined == {}


def test_other_seed_gives_other_frames(shop: ShopData) -> None:
    other = generate_demo_shop(SIZE, seed=12, end=END)
    assert not other.customers.equals(shop.customers)
    assert not other.transactions.equals(shop.transactions)


def test_aware_end_is_taken_as_utc(shop: ShopData) -> None:
    berlin_summer = timezone(timedelta(hours=2))
    end = datetime(2025, 6, 30, 14, 0, tzinfo=berlin_summer)
    aware = generate_demo_shop(SIZE, seed=11, end=end)
    assert_frame_equal(aware.transactions, shop.transactions)
    assert_frame_equal(aware.customers, shop.customers)


def test_needs_at_least_one_customer() -> None:
    with pytest.raises(ValueError, match="customers must be at least 1, got 0"):
        generate_demo_shop(0, seed=1, end=END)


def test_a_single_customer_works() -> None:
    tiny = generate_demo_shop(1, seed=3, end=END)
    assert len(tiny.customers) == 1
    assert len(tiny.transactions) >= 1


# ---------------------------------------------------------------------------------- contract


def test_columns_and_dtypes(shop: ShopData) -> None:
    customers, products, tx = shop.customers, shop.products, shop.transactions
    assert list(customers.columns) == [*CUSTOMER_COLUMNS, *TRAITS]
    assert shop.trait_columns == TRAITS
    assert list(products.columns) == list(PRODUCT_COLUMNS)
    assert list(tx.columns) == list(TRANSACTION_COLUMNS)
    for frame, column in [
        *((customers, c) for c in (*CUSTOMER_COLUMNS[:-1], "gender", "latent_group")),
        *((products, c) for c in ("product_id", "name", "category")),
        *((tx, c) for c in ("invoice", "customer_id", "product_id")),
    ]:
        assert pd.api.types.is_string_dtype(frame[column]), column
    assert customers["signup_at"].dtype == "datetime64[ns]"
    assert tx["invoiced_at"].dtype == "datetime64[ns]"
    assert customers["age"].dtype == np.int64
    assert customers["children"].dtype == np.int64
    assert customers["income"].dtype == np.float64
    assert products["price"].dtype == np.float64
    assert tx["quantity"].dtype == np.int64
    assert tx["unit_price"].dtype == np.float64


def test_ids_are_unique_and_well_formed(shop: ShopData) -> None:
    customers, products, tx = shop.customers, shop.products, shop.transactions
    assert customers["customer_id"].is_unique
    assert customers["customer_id"].str.fullmatch(r"C\d{6}").all()
    assert customers["email"].is_unique
    assert customers["email"].str.fullmatch(r"[a-z]+\.[a-z]+\d+@example\.com").all()
    assert products["product_id"].is_unique
    assert products["product_id"].str.fullmatch(r"P\d{4}").all()
    assert products["name"].is_unique
    assert tx["invoice"].str.fullmatch(r"INV\d{7}").all()
    # One invoice is one order: one customer, one moment, distinct products, 1-4 lines.
    per_invoice = tx.groupby("invoice").agg(
        customers=("customer_id", "nunique"),
        moments=("invoiced_at", "nunique"),
        lines=("product_id", "size"),
        products=("product_id", "nunique"),
    )
    assert (per_invoice["customers"] == 1).all()
    assert (per_invoice["moments"] == 1).all()
    assert (per_invoice["lines"] == per_invoice["products"]).all()
    assert per_invoice["lines"].between(1, 4).all()
    assert per_invoice["lines"].max() == 4


def test_invoices_are_numbered_in_time_order(shop: ShopData) -> None:
    tx = shop.transactions
    assert tx["invoiced_at"].is_monotonic_increasing
    assert tx["invoice"].is_monotonic_increasing
    assert tx["invoice"].iloc[0] == "INV0000001"


def test_every_line_refers_to_a_known_customer_and_product(shop: ShopData) -> None:
    tx = shop.transactions
    assert tx["customer_id"].isin(shop.customers["customer_id"]).all()
    assert tx["product_id"].isin(shop.products["product_id"]).all()
    # Every customer has bought something at least once.
    assert set(tx["customer_id"]) == set(shop.customers["customer_id"])


def test_times_lie_in_the_history(shop: ShopData) -> None:
    customers, tx = shop.customers, shop.transactions
    two_years_ago = pd.Timestamp(END) - pd.Timedelta(days=730)
    assert customers["signup_at"].between(two_years_ago, pd.Timestamp(END)).all()
    signup = tx["customer_id"].map(customers.set_index("customer_id")["signup_at"])
    assert (tx["invoiced_at"] >= signup).all()
    assert (tx["invoiced_at"] <= pd.Timestamp(END)).all()
    # Orders spread over the whole two years, not just a corner of it.
    assert tx["invoiced_at"].min() < two_years_ago + pd.Timedelta(days=60)
    assert tx["invoiced_at"].max() > pd.Timestamp(END) - pd.Timedelta(days=7)


def test_customer_traits(shop: ShopData) -> None:
    customers = shop.customers
    assert set(customers["country"]) == set(TIMEZONES)
    assert (customers["timezone"] == customers["country"].map(TIMEZONES)).all()
    assert customers["age"].between(18, 85).all()
    assert set(customers["gender"]) == {"female", "male", "other"}
    assert customers["children"].between(0, 3).all()
    missing = customers["income"].isna().mean()
    assert 0.005 < missing < 0.04
    assert (customers["income"].dropna() > 0).all()
    assert customers[list(CUSTOMER_COLUMNS)].notna().all().all()


def test_catalogue(shop: ShopData) -> None:
    products, tx = shop.products, shop.transactions
    assert 180 <= len(products) <= 220
    assert set(products["category"]) == {
        "Coffee",
        "Tea",
        "Equipment",
        "Snacks",
        "Gifts",
        "Accessories",
    }
    price = products.groupby("category")["price"]
    assert price.min()["Equipment"] > price.max()["Snacks"]
    assert (products["price"] > 0).all()
    list_price = tx["product_id"].map(products.set_index("product_id")["price"])
    assert (tx["quantity"] >= 1).all()
    assert (tx["unit_price"] > 0).all()
    assert (tx["unit_price"] <= list_price).all()
    discounted = (tx["unit_price"] < list_price).mean()
    assert 0.02 < discounted < 0.4


# ---------------------------------------------------------------------------- latent groups


def test_group_mix_is_near_the_target(shop: ShopData) -> None:
    assert sum(GROUP_SHARES.values()) == pytest.approx(1.0)
    assert set(GROUP_SHARES) == set(TRUE_CONVERSION_BASE)
    mix = shop.customers["latent_group"].value_counts(normalize=True)
    assert set(mix.index) == set(GROUP_SHARES)
    for group, share in GROUP_SHARES.items():
        assert mix[group] == pytest.approx(share, abs=0.035), group


def test_groups_differ_in_rfm(per_customer: pd.DataFrame) -> None:
    by_group = per_customer.groupby("latent_group")
    recency = by_group["recency"].median()
    frequency = by_group["frequency"].mean()
    spend = by_group["monetary"].mean()
    aov = by_group["aov"].median()

    assert recency["lapsed"] > 180
    assert by_group["recency"].min()["lapsed"] > 180
    assert recency["champions"] < 45
    assert recency["new"] < 90
    assert spend["champions"] > spend["loyal"]
    for other in ("bargain_hunters", "new", "lapsed"):
        assert spend["loyal"] > spend[other], other
    assert frequency.idxmax() == "champions"
    assert frequency["bargain_hunters"] > frequency["loyal"]
    assert aov.idxmin() == "bargain_hunters"


def test_new_customers_are_new(per_customer: pd.DataFrame) -> None:
    new = per_customer[per_customer["latent_group"] == "new"]
    assert (new["signup_at"] >= pd.Timestamp(END) - pd.Timedelta(days=90)).all()
    assert new["frequency"].between(1, 2).all()
    established = per_customer[per_customer["latent_group"] != "new"]
    assert (established["signup_at"] < pd.Timestamp(END) - pd.Timedelta(days=90)).all()


def test_groups_differ_in_category_spend_and_demographics(shop: ShopData) -> None:
    tx = shop.transactions.merge(shop.products[["product_id", "category"]])
    tx = tx.merge(shop.customers[["customer_id", "latent_group"]])
    spend = pd.crosstab(
        tx["latent_group"],
        tx["category"],
        values=tx["quantity"] * tx["unit_price"],
        aggfunc="sum",
        normalize="index",
    )
    assert spend["Snacks"].idxmax() == "bargain_hunters"
    assert spend["Equipment"].idxmax() == "champions"

    people = shop.customers.groupby("latent_group")
    assert people["age"].mean()["champions"] > people["age"].mean()["bargain_hunters"] + 5
    income = people["income"].median()
    assert income.idxmax() == "champions"
    assert income["loyal"] > income["bargain_hunters"]


# --------------------------------------------------------------------------- response model


def _one_per_group() -> pd.DataFrame:
    return pd.DataFrame({"latent_group": list(TRUE_CONVERSION_BASE)})


@pytest.mark.parametrize(
    ("variant", "expected"),
    [
        (
            None,
            {"champions": 0.096, "loyal": 0.064, "bargain_hunters": 0.048, "new": 0.04},
        ),
        ("control", {"champions": 0.12, "loyal": 0.08, "bargain_hunters": 0.06, "lapsed": 0.02}),
        ("discount", {"champions": 0.12, "loyal": 0.10, "bargain_hunters": 0.12, "new": 0.07}),
        ("story", {"champions": 0.125, "loyal": 0.085, "bargain_hunters": 0.065, "new": 0.055}),
        ("no-such-variant", {"champions": 0.12, "loyal": 0.08, "lapsed": 0.02}),
    ],
)
def test_response_probability_follows_the_truth_table(
    variant: str | None, expected: dict[str, float]
) -> None:
    customers = pd.DataFrame({"latent_group": list(expected)})
    probability = response_probability(customers, variant)
    assert probability.dtype == np.float64
    np.testing.assert_allclose(probability, list(expected.values()))


def test_response_probability_rule_for_every_group_and_variant() -> None:
    customers = _one_per_group()
    holdout = response_probability(customers, None)
    for row, (group, base) in enumerate(TRUE_CONVERSION_BASE.items()):
        assert holdout[row] == pytest.approx(HOLDOUT_FACTOR * base)
        for variant, lift in TRUE_VARIANT_LIFT.items():
            factor = 1.0
            if variant == "discount":
                factor = {"bargain_hunters": 3.0, "champions": 0.0}.get(group, 1.0)
            got = response_probability(customers, variant)[row]
            assert got == pytest.approx(base + factor * lift), (group, variant)
            assert true_probability(group, variant) == got


def test_response_probability_needs_known_groups() -> None:
    with pytest.raises(ValueError, match="customers need a 'latent_group' column"):
        response_probability(pd.DataFrame({"customer_id": ["C1"]}), "control")
    with pytest.raises(ValueError, match="unknown latent group\\(s\\) vip; expected one of"):
        response_probability(pd.DataFrame({"latent_group": ["loyal", "vip"]}), "control")
    with pytest.raises(ValueError, match="unknown latent group 'vip'"):
        true_probability("vip", None)


def test_response_probability_on_generated_customers(shop: ShopData) -> None:
    probability = response_probability(shop.customers, "discount")
    assert len(probability) == len(shop.customers)
    bargain = (shop.customers["latent_group"] == "bargain_hunters").to_numpy()
    assert np.all(probability[bargain] == pytest.approx(0.12))


@pytest.mark.parametrize("variant", [None, "control", "discount", "story"])
def test_simulated_conversion_rate_matches_the_probability(variant: str | None) -> None:
    draws = 100_000
    customers = pd.DataFrame({"latent_group": np.repeat(list(TRUE_CONVERSION_BASE), draws)})
    converted = simulate_conversions(customers, variant, np.random.default_rng(2024))
    assert converted.dtype == np.bool_
    rates = pd.Series(converted).groupby(customers["latent_group"]).mean()
    for group in TRUE_CONVERSION_BASE:
        p = true_probability(group, variant)
        # Four standard errors: deterministic with this seed, yet wrong code would not pass.
        assert rates[group] == pytest.approx(p, abs=4 * np.sqrt(p * (1 - p) / draws)), group


def test_simulated_conversions_are_reproducible() -> None:
    customers = pd.DataFrame({"latent_group": ["loyal"] * 1_000})
    first = simulate_conversions(customers, "story", np.random.default_rng(5))
    second = simulate_conversions(customers, "story", np.random.default_rng(5))
    np.testing.assert_array_equal(first, second)
