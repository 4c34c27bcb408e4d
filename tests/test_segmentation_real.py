"""Real data: Wholesale customers, Customer Personality and CDNOW, checked against plain
scikit-learn computations on the same features, with profiles that make business sense."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.cluster import KMeans
from sklearn.metrics import (
    adjusted_rand_score,
    calinski_harabasz_score,
    davies_bouldin_score,
    silhouette_score,
)
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from segmentation import Segmenter
from segmentation.models import RFM_SEGMENTS
from segmentation.traits import trait_features
from tests.test_segmentation_model import _cdnow_rfm

pytestmark = pytest.mark.shared_data

SEED = int(np.random.RandomState(0).randint(np.iinfo(np.int32).max))  # Segmenter's resolved seed
CATEGORIES = ["Fresh", "Milk", "Grocery", "Frozen", "Detergents_Paper", "Delicassen"]


def plain_scores(space: np.ndarray, k: int, silhouette_sample: int | None = None) -> list[float]:
    """Silhouette, Calinski-Harabasz and Davies-Bouldin of plain k-means on ``space``."""
    labels = KMeans(n_clusters=k, n_init=10, random_state=SEED).fit_predict(space)
    return [
        silhouette_score(space, labels, sample_size=silhouette_sample, random_state=SEED),
        calinski_harabasz_score(space, labels),
        davies_bouldin_score(space, labels),
    ]


# ------------------------------------------------------------------------------------ Wholesale


@pytest.fixture
def wholesale(shared_data: Path) -> pd.DataFrame:
    raw = pd.read_csv(shared_data / "wholesale_customers" / "wholesale_customers.csv")
    raw.insert(0, "customer_id", [str(i) for i in range(1, len(raw) + 1)])
    return trait_features(raw, CATEGORIES, {"total_spend": CATEGORIES}, ["Channel", "Region"])


def test_wholesale(wholesale: pd.DataFrame) -> None:
    with threadpool_limits(limits=1):
        segmenter = Segmenter(
            k="auto", k_range=(2, 6), features=CATEGORIES, log=tuple(CATEGORIES), refits=3
        ).fit(wholesale)
        # The same features by hand: log1p, standardise.
        space = StandardScaler().fit_transform(np.log1p(wholesale[CATEGORIES].to_numpy()))
        plain = {s.k: plain_scores(space, s.k) for s in segmenter.search_.scores}

    np.testing.assert_allclose(segmenter.transform_space(wholesale), space)
    for score in segmenter.search_.scores:
        ours = [score.silhouette, score.calinski_harabasz, score.davies_bouldin]
        np.testing.assert_allclose(ours, plain[score.k], rtol=1e-9)
    # Measured: silhouette 0.290 at k = 2, below 0.26 for every larger k; only k = 2 is stable.
    best_plain = max(plain, key=lambda k: plain[k][0])
    assert segmenter.k_ == best_plain == 2
    assert segmenter.search_.scores[0].stability >= 0.8
    # The two segments are the two channels: retail (Channel 2) buys grocery and detergents,
    # hotels, restaurants and cafés (Channel 1) fresh and frozen food.
    retail, horeca = segmenter.profiles_
    # Named by where each segment's median client sits among all 440: the retailers' median
    # grocery, milk and detergent spends are all at the 78th percentile (ties: by name).
    assert retail.name == "High Detergents_Paper, high Grocery"
    assert horeca.name == "Low Grocery, low Milk"
    assert retail.means["Fresh"] < horeca.means["Fresh"]
    assert retail.means["Frozen"] < horeca.means["Frozen"]
    channel = wholesale["Channel"].astype(int).to_numpy()
    assert adjusted_rand_score(channel, segmenter.labels_) > 0.5
    assert sum(p.revenue_share for p in segmenter.profiles_) == pytest.approx(1.0)


# --------------------------------------------------------------------------- Customer Personality


@pytest.fixture
def personality(shared_data: Path) -> pd.DataFrame:
    raw = pd.read_csv(shared_data / "customer_personality" / "marketing_campaign.csv", sep="\t")
    raw["customer_id"] = raw["ID"].astype(str)
    spend = [c for c in raw.columns if c.startswith("Mnt")]
    return trait_features(
        raw,
        ["Income", "Recency", "NumWebPurchases", "NumStorePurchases", "NumCatalogPurchases"],
        {"age": "Year_Birth", "children": ["Kidhome", "Teenhome"], "total_spend": spend},
        ["Education", "Marital_Status"],
        at=datetime(2014, 7, 1),
    )


PERSONALITY = [
    "Income",
    "total_spend",
    "children",
    "age",
    "NumWebPurchases",
    "NumStorePurchases",
    "NumCatalogPurchases",
    "Education",
]


def test_customer_personality(personality: pd.DataFrame) -> None:
    education = ["Basic", "2n Cycle", "Graduation", "Master", "PhD"]
    with threadpool_limits(limits=1):
        segmenter = Segmenter(
            k="auto",
            k_range=(2, 5),
            features=PERSONALITY,
            categorical={"Education": education},
            outliers="clip",
            refits=2,
            log=("Income", "total_spend"),
        ).fit(personality)
        space = segmenter.transform_space(personality)
        plain = {s.k: plain_scores(space, s.k) for s in segmenter.search_.scores}

    report = segmenter.preprocessing_
    assert report["missing"]["Income"] == 24  # SOURCE.md: 24 missing incomes, imputed
    assert report["outliers"]["Income"] > 0  # the 666,666 income among them, clipped
    assert report["outliers"]["age"] == 3  # born 1893, 1899 and 1900
    for score in segmenter.search_.scores:
        ours = [score.silhouette, score.calinski_harabasz, score.davies_bouldin]
        np.testing.assert_allclose(ours, plain[score.k], rtol=1e-9)
    assert segmenter.k_ == max(plain, key=lambda k: plain[k][0]) == 2
    # Two customer bases: affluent big spenders without children, and the rest.
    rich, budget = segmenter.profiles_
    assert rich.means["total_spend"] > 5 * budget.means["total_spend"]
    assert rich.means["Income"] > budget.means["Income"] + 20_000
    assert rich.means["children"] < budget.means["children"]
    assert rich.revenue_share > 0.85
    assert rich.name == "High NumWebPurchases, high NumStorePurchases"


# ---------------------------------------------------------------------------------------- CDNOW


def test_cdnow_auto_k_on_a_sample(shared_data: Path) -> None:
    rfm = _cdnow_rfm(shared_data / "cdnow" / "CDNOW_master.txt")
    with threadpool_limits(limits=1):
        segmenter = Segmenter(k="auto", k_range=(2, 4), refits=1, random_state=0).fit(rfm)
        # The search samples 20,000 of the 23,570 customers (fixed seed) and the silhouette
        # 5,000 of those; the same by hand:
        rows = np.sort(np.random.default_rng(SEED).choice(len(rfm), 20_000, replace=False))
        space = segmenter.transform_space(rfm)[rows]
        plain = {
            s.k: plain_scores(space, s.k, silhouette_sample=5000) for s in segmenter.search_.scores
        }

    assert segmenter.search_.sample_size == 20_000
    for score in segmenter.search_.scores:
        ours = [score.silhouette, score.calinski_harabasz, score.davies_bouldin]
        np.testing.assert_allclose(ours, plain[score.k], rtol=1e-9)
    stable = [s.k for s in segmenter.search_.scores if s.stability >= 0.8]
    assert segmenter.k_ == max(stable, key=lambda k: plain[k][0])
    top = segmenter.profiles_[0]
    assert top.name == "High spend, recent, frequent"
    assert top.revenue_share > 2 * top.share


def test_cdnow_rfm_rules(shared_data: Path) -> None:
    rfm = _cdnow_rfm(shared_data / "cdnow" / "CDNOW_master.txt")
    segmenter = Segmenter(model="rfm", refits=0).fit(rfm)
    profiles = {p.name: p for p in segmenter.profiles_}

    assert sum(p.size for p in segmenter.profiles_) == 23_570
    # 60 % of the cohort bought once: most of them score F = 1, and those long gone hibernate.
    assert profiles["Hibernating"].share > 0.25
    assert profiles["Champions"].means["frequency"] > 5
    assert profiles["Champions"].revenue_share > 0.25
    assert profiles["Champions"].means["recency"] < profiles["At Risk"].means["recency"]
    assert profiles["Can't Lose Them"].means["monetary"] > profiles["Hibernating"].means["monetary"]
    assert [p.name for p in segmenter.profiles_] == list(RFM_SEGMENTS)


def test_wholesale_from_config_alone(shared_data: Path, tmp_path: Path) -> None:
    """The README's worked example: a customer table without ids or transactions, by config."""
    from click.testing import CliRunner

    from cli.main import cli

    config = tmp_path / "config.toml"
    columns = '["Fresh", "Milk", "Grocery", "Frozen", "Detergents_Paper", "Delicassen"]'
    config.write_text(
        f"""[source]
type = "files"

[source.customers]
path = "{shared_data / "wholesale_customers" / "wholesale_customers.csv"}"
row_ids = true
traits = ["*"]

[segmentation]
k = "auto"
k_range = [2, 6]
features = []
traits = {columns}
derived = {{ total_spend = {columns} }}
preprocessing = {{ log = {columns} }}

[channels.export]
type = "file"
""",
        encoding="utf-8",
    )
    runner = CliRunner()
    loaded = runner.invoke(cli, ["load", "-c", str(config)], catch_exceptions=False)
    assert loaded.output == "Loaded 440 customers, 0 products, 0 transaction lines.\n"
    fitted = runner.invoke(cli, ["segment", "fit", "-c", str(config)], catch_exceptions=False)
    assert fitted.exit_code == 0, fitted.output
    assert "│  1 │ High Detergents_Paper, high Grocery │       188 │" in fitted.output
    assert "│  2 │ Low Grocery, low Milk               │       252 │" in fitted.output
    assert "│ 2* │   1,844 │      0.290 │             189.0 │" in fitted.output
