"""Recommendations by purpose: the ranking metrics, EASE, the repeat-aware model, the config keys,
and the targets on the real Online Retail log (UCI, 2010-2011)."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from pydantic import ValidationError

from campaigns.config.schema import FilesSource, RecommendationsConfig, TableFile
from campaigns.personalization import (
    PersonalizationError,
    RecommenderSettings,
    fit_recommender,
    recommend_for,
)
from campaigns.personalization.evaluate import Evaluation, evaluate_recommenders
from campaigns.personalization.evaluate_report import markdown_table, summary_table
from campaigns.personalization.ranking import bootstrap_means, per_customer
from campaigns.personalization.recommend_ease import ease_similarity
from campaigns.personalization.tuning import tune
from store.sources.files import load_files

ROOT = Path(__file__).resolve().parents[1]
END = datetime(2026, 11, 23)

# ------------------------------------------------------------------------------------- metrics


def test_metrics_per_customer_by_hand() -> None:
    # Customer 0 bought products 1 and 3; customer 1 bought 2; customer 2 bought nothing listed.
    relevant = sp.csr_matrix(np.array([[0, 1, 0, 1, 0], [0, 0, 1, 0, 0], [1, 0, 0, 0, 0]]))
    picks = np.array([[1, 0, 3], [4, 0, 2], [2, 3, -1]])

    m = per_customer(picks, relevant, k=3)

    # Customer 0: hits at ranks 1 and 3. DCG = 1 + 1/log2(4) = 1.5; ideal = 1 + 1/log2(3).
    assert m["precision"].tolist() == pytest.approx([2 / 3, 1 / 3, 0.0])
    assert m["recall"].tolist() == pytest.approx([1.0, 1.0, 0.0])
    assert m["ndcg"][0] == pytest.approx(1.5 / (1 + 1 / np.log2(3)))
    assert m["ndcg"][1] == pytest.approx(0.5)  # a hit at rank 3, one relevant: 1/log2(4)
    assert m["map"].tolist() == pytest.approx([(1 + 2 / 3) / 2, 1 / 3, 0.0])
    assert m["hit_rate"].tolist() == [1.0, 1.0, 0.0]


def test_bootstrap_differences_are_paired() -> None:
    rng = np.random.default_rng(3)
    noise = rng.normal(0, 1, 2000)
    # b = a + 0.01 exactly: the customers' spread cancels in the paired difference.
    estimates = bootstrap_means({"a": noise, "d": np.full(2000, 0.01)}, 500, seed=0)

    assert estimates["a"].low < 0 < estimates["a"].high
    assert estimates["d"].value == pytest.approx(0.01)
    assert estimates["d"].low == pytest.approx(0.01)
    assert estimates["d"].high == pytest.approx(0.01)


# ---------------------------------------------------------------------------------------- EASE


def test_ease_is_the_closed_form_ridge_regression_with_a_zero_diagonal() -> None:
    rng = np.random.default_rng(0)
    bought = (rng.random((300, 12)) < 0.25).astype(np.float64)

    weights = ease_similarity(sp.csr_matrix(bought), penalty=5.0, neighbours=12).toarray()

    # Each column j: the ridge regression of product j on the other products.
    for j in range(12):
        others = [i for i in range(12) if i != j]
        x = bought[:, others]
        beta = np.linalg.solve(x.T @ x + 5.0 * np.eye(11), x.T @ bought[:, j])
        # Only positive weights are kept (a product never recommends through a negative one).
        np.testing.assert_allclose(weights[others, j], np.maximum(beta, 0), atol=1e-5)
        assert weights[j, j] == 0


# ----------------------------------------------------------------------------------- replenish


def _log() -> tuple[pd.DataFrame, pd.DataFrame]:
    products = pd.DataFrame(
        {
            "product_id": ["A", "B", "C", "D"],
            "name": ["Beans", "Filters", "Mug", "Cookies"],
            "category": ["Coffee", "Accessories", "Accessories", "Snacks"],
            "price": [8.0, 3.0, 12.0, 3.5],
        }
    )
    rows = [
        # c1 bought A three times long ago, B once last week; C twice, a year ago.
        ("c1", "A", 300),
        ("c1", "A", 250),
        ("c1", "A", 200),
        ("c1", "B", 7),
        ("c1", "C", 400),
        ("c1", "C", 380),
        ("c2", "B", 20),
        ("c2", "D", 20),
        ("c3", "B", 30),
        ("c3", "D", 31),
    ]
    transactions = pd.DataFrame(
        {
            "invoice": [f"I{i}" for i in range(len(rows))],
            "customer_id": [r[0] for r in rows],
            "product_id": [r[1] for r in rows],
            "quantity": 1,
            "unit_price": 5.0,
            "invoiced_at": [END - pd.Timedelta(days=r[2]) for r in rows],
        }
    )
    return transactions, products


def test_rebuy_ranks_by_frequency_and_ties_by_recency() -> None:
    transactions, products = _log()
    model = fit_recommender(transactions, products, ["c1", "c2", "c3"], END)

    picks = recommend_for(model, ["c1"], 3, "rebuy", "replenish")["c1"]

    # A three times, C twice, B once.
    assert [p["id"] for p in picks] == ["A", "C", "B"]


def test_the_time_decay_lets_recent_purchases_overtake_frequent_old_ones() -> None:
    transactions, products = _log()
    customers = ["c1", "c2", "c3"]
    no_decay = RecommenderSettings(half_life_days=None, neighbour_weight=0.0)
    short = RecommenderSettings(half_life_days=30.0, neighbour_weight=0.0)
    neighbours = RecommenderSettings(half_life_days=30.0, neighbour_weight=1.0)

    def first(settings: RecommenderSettings, count: int = 1) -> list[str]:
        model = fit_recommender(transactions, products, customers, END, settings=settings)
        picks = recommend_for(model, ["c1"], count, "repeat", "replenish")["c1"]
        return [p["id"] for p in picks]

    assert first(no_decay) == ["A"]  # three purchases beat one
    assert first(short) == ["B"]  # last week's beats three from 200+ days ago
    # Buyers of B also bought D: the neighbours bring it in above c1's own old products.
    assert first(neighbours, 2) == ["B", "D"]


def test_tuning_chooses_by_validation_and_says_when_it_cannot() -> None:
    transactions, products = _log()

    tuned = tune(transactions, products, END, "replenish", k=2, test_days=10)
    cannot = tune(transactions.iloc[:2], products, END, "discover", k=2, test_days=10)

    # The validation window (the 10 days before END) holds c1's purchase of B only.
    assert tuned.customers == 1
    assert len(tuned.candidates) == 28
    assert tuned.method == "repeat"
    assert cannot.candidates == []
    assert cannot.note == "too little history to tune: defaults used"


def test_an_unknown_purpose_is_refused_by_name() -> None:
    transactions, products = _log()

    with pytest.raises(PersonalizationError) as caught:
        evaluate_recommenders(transactions, products, purposes=("restock",))

    assert str(caught.value) == (
        "unknown recommendation purpose 'restock'; expected discover or replenish"
    )


# -------------------------------------------------------------------------------------- config


def test_purpose_and_method_must_agree() -> None:
    assert RecommendationsConfig().purpose == "discover"
    assert RecommendationsConfig(purpose="replenish").method == "auto"
    with pytest.raises(ValidationError) as caught:
        RecommendationsConfig(purpose="replenish", method="ease")
    assert (
        "method 'ease' is not one for purpose 'replenish'; expected one of 'auto', 'repeat', "
        "'rebuy', 'popular'" in str(caught.value)
    )
    with pytest.raises(ValidationError) as caught:
        RecommendationsConfig(purpose="replenish", exclude_days=30)
    assert "exclude_days applies to purpose 'discover'" in str(caught.value)


# ---------------------------------------------------------------------------- the real log

_SECTION = re.compile(
    r"(<!-- evaluation: online_retail \(tests/test_recommendations.py\) -->\n)(.*?)"
    r"(<!-- end of evaluation -->)",
    re.S,
)


@pytest.fixture(scope="module")
def retail(tmp_path_factory: pytest.TempPathFactory) -> Evaluation:
    """The shared Online Retail log through the files source (cancellations, returns, guest
    lines and repeated lines quarantined), evaluated on three 30-day cutoffs."""
    shared_data = ROOT.parent / "shared" / "data"
    if not (shared_data / "online_retail").is_dir():
        if os.environ.get("CAMPAIGN_REQUIRE_SHARED_DATA") == "1":
            pytest.fail(f"shared datasets not found at {shared_data}")
        pytest.skip(f"shared datasets not found at {shared_data}; set them up to run this test")
    folder = tmp_path_factory.mktemp("retail")
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
        quarantine=folder / "quarantine",
    )
    shop = load_files(source, folder)
    return evaluate_recommenders(shop.transactions, shop.products, k=10, test_days=30, splits=3)


@pytest.mark.shared_data
@pytest.mark.slow
def test_online_retail_targets_hold(retail: Evaluation) -> None:
    """Replenish beats personal rebuy on NDCG@10 with the paired interval above 0; discover
    beats popularity of new products by at least 30% on precision@10 (latest 30-day window)."""
    replenish = retail.task("replenish").latest
    assert replenish.customers == 1380
    repeat = replenish.score("repeat")
    assert repeat.difference is not None
    assert repeat.difference["ndcg"].low > 0
    assert repeat.metrics["ndcg"].value > replenish.score("popular").metrics["ndcg"].value

    discover = retail.task("discover").latest
    assert discover.customers == 1278
    chosen = discover.score(discover.tuning.method).metrics["precision"].value
    popular = discover.score("popular").metrics["precision"].value
    assert chosen >= 1.3 * popular
    # Every rolling cutoff says the same.
    for split in retail.task("replenish").splits:
        assert (
            split.score("repeat").metrics["ndcg"].value > split.score("rebuy").metrics["ndcg"].value
        )
    for split in retail.task("discover").splits:
        best = split.score(split.tuning.method).metrics["precision"].value
        assert best >= 1.3 * split.score("popular").metrics["precision"].value


@pytest.mark.shared_data
@pytest.mark.slow
@pytest.mark.parametrize(
    ("page", "render"), [("docs/personalization.md", markdown_table), ("README.md", summary_table)]
)
def test_the_documented_table_is_the_evaluation(
    retail: Evaluation, page: str, render: Callable[[Evaluation], str]
) -> None:
    """The manual and the README show this evaluation; CAMPAIGN_WRITE_DOCS=1 rewrites them."""
    path = ROOT / page
    text = path.read_text(encoding="utf-8")
    found = _SECTION.search(text)
    assert found is not None, f"{page} lost its evaluation markers"
    table = render(retail) + "\n"
    if os.environ.get("CAMPAIGN_WRITE_DOCS") == "1":
        path.write_text(text[: found.start(2)] + table + text[found.end(2) :], encoding="utf-8")
        return
    assert found.group(2) == table, (
        f"{page}'s evaluation is out of date; rerun with CAMPAIGN_WRITE_DOCS=1"
    )
