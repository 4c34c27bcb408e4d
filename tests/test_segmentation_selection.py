"""Choosing k: metrics equal scikit-learn's, the knee, the rule, stability and held-out checks."""

from __future__ import annotations

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
from threadpoolctl import threadpool_limits

from segmentation import Segmenter
from segmentation.selection import STABLE_ARI, KScore, choose_k, knee_point
from tests.test_segmentation_model import synthetic_rfm

SEED = int(np.random.RandomState(0).randint(np.iinfo(np.int32).max))  # Segmenter's resolved seed


@pytest.fixture(scope="module")
def searched() -> tuple[pd.DataFrame, Segmenter]:
    X, _ = synthetic_rfm()
    return X, Segmenter(k="auto", k_range=(2, 6), refits=3, random_state=0).fit(X)


def test_auto_finds_the_four_groups(searched: tuple[pd.DataFrame, Segmenter]) -> None:
    _, segmenter = searched
    search = segmenter.search_

    assert [s.k for s in search.scores] == [2, 3, 4, 5, 6]
    assert search.chosen == segmenter.k_ == 4
    assert search.knee == 4
    assert search.reason.startswith("k = 4 has the highest silhouette (")
    assert search.reason.endswith("; the elbow of the inertia curve is at k = 4")
    best = next(s for s in search.scores if s.k == 4)
    assert best.stability > 0.95
    assert best.holdout > 0.95


def test_metrics_equal_plain_scikit_learn(searched: tuple[pd.DataFrame, Segmenter]) -> None:
    X, segmenter = searched
    space = segmenter.transform_space(X)
    with threadpool_limits(limits=1):  # many small fits: threads only add overhead
        _compare(space, segmenter)


def _compare(space: np.ndarray, segmenter: Segmenter) -> None:
    for score in segmenter.search_.scores:
        labels = KMeans(n_clusters=score.k, n_init=10, random_state=SEED).fit_predict(space)
        assert score.silhouette == pytest.approx(silhouette_score(space, labels))
        assert score.calinski_harabasz == pytest.approx(calinski_harabasz_score(space, labels))
        assert score.davies_bouldin == pytest.approx(davies_bouldin_score(space, labels))
        centres = np.vstack([space[labels == c].mean(axis=0) for c in range(score.k)])
        assert score.inertia == pytest.approx(((space - centres[labels]) ** 2).sum())
        # Stability: refits on bootstrap resamples drawn from default_rng(seed), seeds seed+1..
        rng = np.random.default_rng(SEED)
        aris = []
        for refit in range(3):
            rows = rng.integers(0, len(space), len(space))
            model = KMeans(n_clusters=score.k, n_init=10, random_state=SEED + refit + 1)
            aris.append(adjusted_rand_score(labels, model.fit(space[rows]).predict(space)))
        assert score.stability == pytest.approx(np.mean(aris))


def test_a_fixed_k_is_scored_alone() -> None:
    X, _ = synthetic_rfm()
    segmenter = Segmenter(k=3, refits=2).fit(X)

    assert [s.k for s in segmenter.search_.scores] == [3]
    assert segmenter.search_.reason == "k = 3 is set in the configuration"
    assert segmenter.search_.knee is None


def test_knee_point() -> None:
    assert knee_point([1, 2, 3, 4, 5, 6], [100.0, 40, 20, 15, 12, 10]) == 3
    assert knee_point([2, 3], [10.0, 5.0]) is None
    assert knee_point([2, 3, 4], [5.0, 5.0, 5.0]) is None


def score(k: int, silhouette: float, stability: float) -> KScore:
    return KScore(k, 0.0, silhouette, 0.0, 0.0, stability, 0.0, 0.0)


def test_the_rule_prefers_stable_k() -> None:
    scores = [score(2, 0.30, 0.95), score(3, 0.45, 0.60), score(4, 0.35, 0.90)]
    chosen, reason = choose_k(scores, knee=3)

    assert chosen == 4
    assert reason == (
        "k = 4 has the highest silhouette (0.350) among the k whose bootstrap stability "
        f"(adjusted Rand index) is at least {STABLE_ARI} (2, 4); the elbow of the inertia curve "
        "is at k = 3"
    )
    unstable = [score(2, 0.30, 0.5), score(3, 0.45, 0.6)]
    assert choose_k(unstable, None) == (
        3,
        "k = 3 has the highest silhouette (0.450); no k reached a bootstrap stability of 0.8, "
        "so treat these segments with care",
    )
    # Equal silhouettes: the smaller k.
    assert choose_k([score(2, 0.4, 0.9), score(3, 0.4, 0.9)], None)[0] == 2
