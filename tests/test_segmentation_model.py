"""The k-means segmenter: stable ids, profiles and names, the estimator contract, real data."""

from __future__ import annotations

import functools
import pickle
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.cluster import KMeans, MiniBatchKMeans
from sklearn.metrics import adjusted_rand_score, silhouette_score
from sklearn.utils.estimator_checks import parametrize_with_checks
from threadpoolctl import threadpool_limits

from segmentation import (
    RFM_COLUMNS,
    Segmenter,
    SegmentProfile,
    profiles_with_names,
    rfm_features,
)
from segmentation.profiles import describe, unique_names

# ------------------------------------------------------------------------------ synthetic data

#: Four customer groups far apart in (log) spend, (log) frequency and recency, by true group id.
GROUPS = {
    # group: (size, recency days range, orders range, median order value)
    0: (150, (1, 20), (20, 40), 80.0),  # loyal big spenders
    1: (250, (10, 60), (5, 9), 40.0),  # regulars
    2: (300, (100, 180), (2, 3), 25.0),  # fading
    3: (400, (300, 400), (1, 1), 12.0),  # one-off, long gone
}


def synthetic_rfm(seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """An RFM frame with clearly separated groups, and the true group of each row."""
    rng = np.random.default_rng(seed)
    frames, truth = [], []
    for group, (size, (r_lo, r_hi), (f_lo, f_hi), order_value) in GROUPS.items():
        recency = rng.uniform(r_lo, r_hi, size)
        frequency = rng.integers(f_lo, f_hi + 1, size).astype(float)
        average = order_value * rng.lognormal(0.0, 0.15, size)
        frames.append(
            pd.DataFrame(
                {
                    "recency": recency,
                    "frequency": frequency,
                    "monetary": frequency * average,
                    "tenure": recency + rng.uniform(0, 300, size),
                    "average_order_value": average,
                }
            )
        )
        truth.append(np.full(size, group))
    order = rng.permutation(sum(size for size, *_ in GROUPS.values()))
    frame = pd.concat(frames, ignore_index=True).iloc[order]
    frame.index = pd.Index([f"c{i:05d}" for i in range(len(frame))], name="customer_id")
    return frame, np.concatenate(truth)[order]


@pytest.fixture(scope="module")
def rfm() -> tuple[pd.DataFrame, np.ndarray]:
    return synthetic_rfm()


@pytest.fixture(scope="module")
def fitted(rfm: tuple[pd.DataFrame, np.ndarray]) -> Segmenter:
    return Segmenter(k=4).fit(rfm[0])


# ---------------------------------------------------------------------------------- clustering


def test_recovers_separated_groups(rfm: tuple[pd.DataFrame, np.ndarray], fitted: Segmenter) -> None:
    _, truth = rfm

    assert adjusted_rand_score(truth, fitted.labels_) > 0.9
    assert fitted.algorithm_ == "kmeans"
    assert isinstance(fitted.pipeline_.named_steps["cluster"], KMeans)


def test_ids_are_ordered_by_mean_spend(fitted: Segmenter) -> None:
    spend = [profile.means["monetary"] for profile in fitted.profiles_]

    assert [profile.segment_id for profile in fitted.profiles_] == [1, 2, 3, 4]
    assert spend == sorted(spend, reverse=True)
    assert sorted(np.unique(fitted.labels_).tolist()) == [1, 2, 3, 4]
    assert fitted.centroids_.index.tolist() == [1, 2, 3, 4]
    assert fitted.centroids_.columns.tolist() == ["recency", "frequency", "monetary"]
    # Centroids are in original units: the top segment's centre spends most and is most recent.
    assert fitted.centroids_["monetary"].is_monotonic_decreasing
    assert fitted.centroids_["recency"].is_monotonic_increasing


def test_ids_name_the_true_groups(rfm: tuple[pd.DataFrame, np.ndarray], fitted: Segmenter) -> None:
    _, truth = rfm
    # The groups are numbered by spend too, so segment id = group + 1 for (nearly) everyone.
    assert np.mean(fitted.labels_ == truth + 1) > 0.97


def test_same_data_and_seed_give_the_same_ids(
    rfm: tuple[pd.DataFrame, np.ndarray], fitted: Segmenter
) -> None:
    X, _ = rfm
    again = clone(fitted).fit(X)

    np.testing.assert_array_equal(again.labels_, fitted.labels_)
    assert again.profiles_ == fitted.profiles_
    pd.testing.assert_frame_equal(again.centroids_, fitted.centroids_)
    # Another seed finds the same clusters, and the ids follow spend, not the seed.
    other_seed = Segmenter(k=4, random_state=12345).fit(X)
    np.testing.assert_array_equal(other_seed.labels_, fitted.labels_)


def test_predict_matches_labels_and_selects_columns_by_name(
    rfm: tuple[pd.DataFrame, np.ndarray], fitted: Segmenter
) -> None:
    X, _ = rfm
    shuffled = X[list(reversed(X.columns))].assign(extra=1.0)

    np.testing.assert_array_equal(fitted.predict(X), fitted.labels_)
    np.testing.assert_array_equal(fitted.predict(shuffled), fitted.labels_)
    assert fitted.predict(X).dtype == np.int64


def test_pickle_round_trip_predicts_identically(
    rfm: tuple[pd.DataFrame, np.ndarray], fitted: Segmenter
) -> None:
    X, _ = rfm
    restored = pickle.loads(pickle.dumps(fitted))

    np.testing.assert_array_equal(restored.predict(X), fitted.predict(X))
    assert restored.profiles_ == fitted.profiles_
    assert restored.get_params() == fitted.get_params()


def test_minibatch_above_the_threshold(rfm: tuple[pd.DataFrame, np.ndarray]) -> None:
    X, truth = rfm
    segmenter = Segmenter(k=4, minibatch_above=len(X) - 1).fit(X)

    assert segmenter.algorithm_ == "minibatch"
    assert isinstance(segmenter.pipeline_.named_steps["cluster"], MiniBatchKMeans)
    assert adjusted_rand_score(truth, segmenter.labels_) > 0.9
    # At the threshold exactly it is still full k-means.
    assert Segmenter(k=4, minibatch_above=len(X)).fit(X).algorithm_ == "kmeans"


def test_other_features_and_log_choice(rfm: tuple[pd.DataFrame, np.ndarray]) -> None:
    X, _ = rfm
    segmenter = Segmenter(k=3, features=("tenure", "average_order_value")).fit(X)

    assert segmenter.features_ == ("tenure", "average_order_value")
    assert segmenter.log_features_ == ("average_order_value",)
    assert segmenter.n_features_in_ == 5
    assert list(segmenter.feature_names_in_) == list(RFM_COLUMNS)


def test_arrays_without_column_names_are_taken_positionally(
    rfm: tuple[pd.DataFrame, np.ndarray],
) -> None:
    X, _ = rfm
    segmenter = Segmenter(k=4).fit(X.to_numpy()[:, :3])
    profiles = segmenter.profiles_

    # Every column is clustered, none is logged; without a "monetary" column the ids follow size.
    assert segmenter.features_ == ("x0", "x1", "x2")
    assert segmenter.log_features_ == ()
    assert not hasattr(segmenter, "feature_names_in_")
    assert [p.size for p in profiles] == sorted((p.size for p in profiles), reverse=True)
    # Without RFM columns a name lists the columns farthest from the population.
    assert all(p.name.startswith(("High x", "Low x", "Typical")) for p in profiles)
    assert all(np.isnan(p.revenue_share) for p in profiles)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"k": 0}, "k must be a positive integer or 'auto', got 0"),
        (
            {"model": "dbscan"},
            "model must be one of ['kmeans', 'ward', 'gmm', 'rfm'], got 'dbscan'",
        ),
        (
            {"scaling": "zscore"},
            "scaling must be one of ['standard', 'minmax', 'robust'], got 'zscore'",
        ),
        ({"k_range": (1, 5)}, "k_range must be (low, high) with 2 <= low <= high, got (1, 5)"),
        (
            {"k": "auto", "model": "rfm"},
            "k = 'auto' does not apply to the rfm model (its segments are fixed)",
        ),
        (
            {"categorical": {"channel": "onehot"}},
            "categorical columns ['channel'] must also be listed in features",
        ),
        (
            {"features": "monetary"},
            "features must be a non-empty sequence of column names, got 'monetary'",
        ),
        ({"features": ()}, "features must be a non-empty sequence of column names, got ()"),
        (
            {"features": ("monetary", "monetary")},
            "features must not repeat a column, got ['monetary', 'monetary']",
        ),
        (
            {"features": ("spend",)},
            "features ['spend'] are not columns of X; X has "
            "['recency', 'frequency', 'monetary', 'tenure', 'average_order_value']",
        ),
        ({"minibatch_above": -1}, "minibatch_above must be a non-negative integer, got -1"),
    ],
)
def test_bad_parameters_are_reported_at_fit(
    rfm: tuple[pd.DataFrame, np.ndarray], params: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        Segmenter(**params).fit(rfm[0])


def test_predict_needs_the_fitted_columns(
    rfm: tuple[pd.DataFrame, np.ndarray], fitted: Segmenter
) -> None:
    with pytest.raises(
        ValueError, match=r"^X lacks the column\(s\) \['tenure'\] that the model was fitted on$"
    ):
        fitted.predict(rfm[0].drop(columns="tenure"))


# ------------------------------------------------------------------------------------ profiles


def test_profiles_add_up(rfm: tuple[pd.DataFrame, np.ndarray], fitted: Segmenter) -> None:
    X, _ = rfm
    profiles = fitted.profiles_

    assert sum(p.size for p in profiles) == len(X)
    assert sum(p.share for p in profiles) == pytest.approx(1.0)
    assert sum(p.revenue_share for p in profiles) == pytest.approx(1.0)
    assert [p.size for p in profiles] == np.bincount(fitted.labels_)[1:].tolist()
    for profile in profiles:
        members = X[fitted.labels_ == profile.segment_id]
        assert (
            set(profile.means) == set(profile.medians) == set(profile.zscores) == set(RFM_COLUMNS)
        )
        assert profile.means["tenure"] == pytest.approx(members["tenure"].mean())
        assert profile.medians["recency"] == pytest.approx(members["recency"].median())
        assert profile.zscores["monetary"] == pytest.approx(
            (members["monetary"].mean() - X["monetary"].mean()) / X["monetary"].std(ddof=0)
        )
        assert profile.revenue_share == pytest.approx(
            members["monetary"].sum() / X["monetary"].sum()
        )


def test_names_describe_the_segments(fitted: Segmenter) -> None:
    # The "fading" group's median customer sits exactly at the population's median recency
    # (position 0.5), which counts as lapsed; its median spend, 60, at the median too.
    assert [p.name for p in fitted.profiles_] == [
        "Top spend, recent, frequent",
        "High spend, recent, frequent",
        "Mid spend, lapsed, occasional",
        "Low spend, lapsed, occasional",
    ]


def test_positions_are_percentile_ranks_of_the_segment_medians(fitted: Segmenter) -> None:
    from scipy.stats import percentileofscore

    X = fitted_frame()
    for profile in fitted.profiles_:
        for column, position in profile.positions.items():
            # scipy's "mean" kind: (share below + share at or below) / 2.
            expected = percentileofscore(X[column], profile.medians[column], kind="mean") / 100
            assert position == pytest.approx(expected)


def fitted_frame() -> pd.DataFrame:
    return synthetic_rfm()[0]


@pytest.mark.parametrize(
    ("positions", "name"),
    [
        ({"monetary": 0.9, "recency": 0.49, "frequency": 0.51}, "Top spend, recent, frequent"),
        ({"monetary": 0.899, "recency": 0.2, "frequency": 0.8}, "High spend, recent, frequent"),
        ({"monetary": 2 / 3, "recency": 0.5, "frequency": 0.5}, "High spend, lapsed, occasional"),
        ({"monetary": 0.66, "recency": 0.5, "frequency": 0.5}, "Mid spend, lapsed, occasional"),
        ({"monetary": 1 / 3, "recency": 0.9, "frequency": 0.1}, "Mid spend, lapsed, occasional"),
        ({"monetary": 0.33, "recency": 0.9, "frequency": 0.1}, "Low spend, lapsed, occasional"),
        ({"recency": 0.1, "tenure": 0.9}, "Recent"),
        ({"tenure": 0.95, "age": 0.2, "income": 0.6}, "High tenure, low age"),
        ({"tenure": 0.6}, "Typical"),
        ({}, "Segment 3"),
    ],
)
def test_describe_bands(positions: dict[str, float], name: str) -> None:
    assert describe(positions, 3) == name


def test_names_are_unique_within_a_model(rfm: tuple[pd.DataFrame, np.ndarray]) -> None:
    # Eight segments on four groups: several share a description.
    names = [p.name for p in Segmenter(k=8).fit(rfm[0]).profiles_]

    assert len(set(names)) == 8
    assert names[1:3] == ["High spend, recent, frequent", "High spend, recent, frequent (2)"]
    assert unique_names(["A", "B", "A", "A"]) == ["A", "B", "A (2)", "A (3)"]


def test_business_names_override_automatic_ones(fitted: Segmenter) -> None:
    named = profiles_with_names(fitted.profiles_, {1: "VIP", 4: "Win back"})

    assert [p.name for p in named] == [
        "VIP",
        "High spend, recent, frequent",
        "Mid spend, lapsed, occasional",
        "Win back",
    ]
    assert named[0].means == fitted.profiles_[0].means
    assert fitted.profiles_[0].name == "Top spend, recent, frequent"  # not modified


@pytest.mark.parametrize(
    ("names", "message"),
    [
        ({5: "VIP"}, "names: no segment 5; this model has segments 1 to 4"),
        ({2: " "}, "names: the name of segment 2 is empty"),
        (
            {1: "Low spend, lapsed, occasional"},
            "names: segments 1 and 4 would both be called 'Low spend, lapsed, occasional'; "
            "give each segment a different name",
        ),
    ],
)
def test_bad_business_names(fitted: Segmenter, names: dict[int, str], message: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        profiles_with_names(fitted.profiles_, names)


def test_profile_is_frozen(fitted: Segmenter) -> None:
    profile: SegmentProfile = fitted.profiles_[0]
    with pytest.raises(AttributeError):
        profile.name = "x"  # type: ignore[misc]


# ------------------------------------------------------------------- scikit-learn's own checks


# The full suite runs on numpy arrays, which Segmenter takes positionally (every column is a
# feature). One check cannot pass by design and is marked as an expected failure; the array-API
# check skips itself unless SCIPY_ARRAY_API=1.
@parametrize_with_checks(
    [
        Segmenter(),
        Segmenter(k="auto", k_range=(2, 3), refits=1, outliers="clip", scaling="robust"),
    ],
    expected_failed_checks=lambda estimator: {
        "check_clustering": "segment ids are 1..k (1 = highest spend), not 0..k-1",
    },
)
def test_sklearn_estimator_checks(estimator: Segmenter, check: Any) -> None:
    # One thread: the checks fit hundreds of tiny models, where threads only add overhead.
    with threadpool_limits(limits=1):
        check(estimator)


# ------------------------------------------------------------------------- real data: CDNOW


@pytest.fixture
def cdnow_rfm(shared_data: Path) -> pd.DataFrame:
    return _cdnow_rfm(shared_data / "cdnow" / "CDNOW_master.txt")


@functools.cache
def _cdnow_rfm(path: Path) -> pd.DataFrame:
    raw = pd.read_csv(path, sep=r"\s+", dtype=str)
    cds = raw["number_of_cds"].astype(int)
    raw, cds = raw[cds > 0], cds[cds > 0]
    dollars = raw["dollar_value"].astype(float)
    transactions = pd.DataFrame(
        {
            # CDNOW has no invoice numbers: one customer's purchases on one day are one order.
            "invoice": raw["customer_id"] + raw["date"],
            "customer_id": raw["customer_id"],
            "product_id": "cd",
            "quantity": cds,
            "unit_price": dollars / cds,
            "invoiced_at": pd.to_datetime(raw["date"], format="%Y%m%d"),
        }
    )
    # The cohort signed up with its first purchase (all in the first quarter of 1997).
    customers = (
        transactions.groupby("customer_id")["invoiced_at"].min().rename("signup_at").reset_index()
    )
    return rfm_features(transactions, customers, datetime(1998, 7, 1))


@pytest.mark.shared_data
def test_cdnow_rfm_totals(cdnow_rfm: pd.DataFrame) -> None:
    # SOURCE.md: 23,570 customers and $2,500,315.63 in total; 19970101..19980630.
    assert len(cdnow_rfm) == 23_570
    assert cdnow_rfm["monetary"].sum() == pytest.approx(2_500_315.63)
    assert cdnow_rfm["recency"].min() == 1.0  # last purchases on 1998-06-30
    assert cdnow_rfm["tenure"].max() == 546.0  # 1997-01-01 to 1998-07-01
    assert (cdnow_rfm["frequency"] >= 1).all()


@pytest.mark.shared_data
def test_cdnow_segments(cdnow_rfm: pd.DataFrame) -> None:
    segmenter = Segmenter(k=4, random_state=0, refits=0).fit(cdnow_rfm)
    profiles = segmenter.profiles_
    spend = [p.means["monetary"] for p in profiles]

    assert spend == sorted(spend, reverse=True)
    assert sum(p.share for p in profiles) == pytest.approx(1.0)
    assert sum(p.revenue_share for p in profiles) == pytest.approx(1.0)
    # The top segment (about 12 % of customers) brings in about half of the revenue; the bottom
    # one (about 39 %) under a tenth.
    assert profiles[0].revenue_share > 0.45
    assert profiles[0].revenue_share > 3 * profiles[0].share
    assert profiles[-1].revenue_share < 0.1 < 0.3 < profiles[-1].share
    assert profiles[0].name == "Top spend, recent, frequent"
    assert profiles[-1].name == "Low spend, lapsed, occasional"
    # Cluster quality in the space k-means works in (log, standardised); measured 0.43.
    space = segmenter.pipeline_[:-1].transform(cdnow_rfm)
    score = silhouette_score(space, segmenter.labels_, sample_size=5000, random_state=0)
    assert score > 0.35
