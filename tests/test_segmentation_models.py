"""The models besides k-means: Ward (sampled), Gaussian mixture and rule-based RFM scores."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy.cluster.hierarchy import fcluster, linkage
from sklearn.metrics import adjusted_rand_score
from sklearn.utils.estimator_checks import parametrize_with_checks
from threadpoolctl import threadpool_limits

from segmentation import Segmenter
from segmentation.models import RFM_SEGMENTS, GaussianSegments, RFMRules, WardSegments
from tests.test_segmentation_model import synthetic_rfm


@pytest.fixture(scope="module")
def rfm() -> tuple[pd.DataFrame, np.ndarray]:
    return synthetic_rfm()


@parametrize_with_checks(
    [WardSegments(n_clusters=3, sample_size=40), GaussianSegments(n_clusters=3)],
    expected_failed_checks=lambda estimator: {},
)
def test_models_are_scikit_learn_clusterers(estimator: Any, check: Any) -> None:
    # One thread: the checks fit hundreds of tiny models, where threads only add overhead.
    with threadpool_limits(limits=1):
        check(estimator)


@pytest.mark.parametrize("model", ["ward", "gmm"])
def test_models_recover_separated_groups(rfm: tuple[pd.DataFrame, np.ndarray], model: str) -> None:
    X, truth = rfm
    segmenter = Segmenter(k=4, model=model, refits=0).fit(X)

    assert segmenter.algorithm_ == model
    assert adjusted_rand_score(truth, segmenter.labels_) > 0.9
    spend = [p.means["monetary"] for p in segmenter.profiles_]
    assert spend == sorted(spend, reverse=True)
    np.testing.assert_array_equal(segmenter.predict(X), segmenter.labels_)


def test_ward_on_all_rows_is_scipy_ward(rfm: tuple[pd.DataFrame, np.ndarray]) -> None:
    X, _ = rfm
    space = Segmenter(k=4, refits=0).fit(X).transform_space(X)
    ward = WardSegments(n_clusters=4, sample_size=len(space)).fit(space)

    assert not ward.sampled_
    groups = fcluster(linkage(space, method="ward"), t=4, criterion="maxclust")
    # Nearest-centroid assignment agrees with the cut of the tree on separated groups.
    assert adjusted_rand_score(groups, ward.labels_) > 0.95
    np.testing.assert_array_equal(ward.linkage_, linkage(space, method="ward"))


def test_ward_fits_a_sample_of_large_inputs(rfm: tuple[pd.DataFrame, np.ndarray]) -> None:
    X, truth = rfm
    space = Segmenter(k=4, refits=0).fit(X).transform_space(X)
    ward = WardSegments(n_clusters=4, sample_size=300, random_state=1).fit(space)

    assert ward.sampled_
    assert ward.linkage_.shape == (299, 4)  # the tree of the 300 sampled rows
    assert len(ward.labels_) == len(space)  # everyone is assigned to the nearest centroid
    assert adjusted_rand_score(truth, ward.labels_) > 0.9


# ------------------------------------------------------------------------------------ RFM rules


def test_rfm_quintile_scores_by_hand() -> None:
    X = pd.DataFrame(
        {
            "recency": [1.0, 2, 3, 4, 5, 6, 7, 8, 9, 10],
            "frequency": [1.0, 1, 1, 1, 1, 1, 2, 3, 5, 9],
            "monetary": [10.0, 20, 30, 40, 50, 60, 70, 80, 90, 100],
        }
    )
    rules = RFMRules().fit(X)
    scores = rules.scores(X)

    # Recency edges 2.8, 4.6, 6.4, 8.2: 1-2 days score 5 ... 9-10 days score 1.
    assert scores["R"].tolist() == [5, 5, 4, 4, 3, 3, 2, 2, 1, 1]
    # Frequency edges 1, 1, 1.4, 3.4: the one-off buyers (ties with the edges) score 1.
    assert scores["F"].tolist() == [1, 1, 1, 1, 1, 1, 4, 4, 5, 5]
    assert scores["M"].tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert scores["FM"].tolist() == [1, 1, 2, 2, 2, 2, 4, 4, 5, 5]
    names = [RFM_SEGMENTS[i] for i in rules.predict(X)]
    assert names == [
        "New Customers",
        "New Customers",
        "Potential Loyalists",
        "Potential Loyalists",
        "About to Sleep",
        "About to Sleep",
        "At Risk",
        "At Risk",
        "Can't Lose Them",
        "Can't Lose Them",
    ]


def test_rfm_model_names_segments_with_fixed_ids(rfm: tuple[pd.DataFrame, np.ndarray]) -> None:
    X, _ = rfm
    segmenter = Segmenter(model="rfm", refits=0).fit(X)
    profiles = {p.name: p for p in segmenter.profiles_}

    assert segmenter.k_ == len(RFM_SEGMENTS) == 10
    assert [p.name for p in segmenter.profiles_] == list(RFM_SEGMENTS)
    assert [p.segment_id for p in segmenter.profiles_] == list(range(1, 11))
    assert sum(p.size for p in segmenter.profiles_) == len(X)
    # The loyal big spenders are Champions, the one-off customers long gone Hibernating.
    assert profiles["Champions"].means["monetary"] > 5 * profiles["Hibernating"].means["monetary"]
    assert profiles["Champions"].means["recency"] < profiles["Hibernating"].means["recency"]
    np.testing.assert_array_equal(segmenter.predict(X), segmenter.labels_)


def test_rfm_needs_the_rfm_columns(rfm: tuple[pd.DataFrame, np.ndarray]) -> None:
    X, _ = rfm
    with pytest.raises(
        ValueError,
        match=r"^the rfm model scores recency, frequency and monetary; X lacks \['monetary'\]$",
    ):
        Segmenter(model="rfm", features=("recency", "frequency"), refits=0).fit(
            X.drop(columns="monetary")
        )
