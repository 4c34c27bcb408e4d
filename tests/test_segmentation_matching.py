"""Stable ids across refits: Hungarian matching of centroids, new ids for new segments."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from segmentation import Segmenter
from segmentation.matching import match_segments, migration_matrix
from tests.test_segmentation_model import synthetic_rfm


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, np.ndarray]:
    return synthetic_rfm()


@pytest.fixture(scope="module")
def previous(data: tuple[pd.DataFrame, np.ndarray]) -> Segmenter:
    return Segmenter(k=4, refits=0).fit(data[0])


def test_a_refit_on_new_customers_keeps_the_ids(
    data: tuple[pd.DataFrame, np.ndarray], previous: Segmenter
) -> None:
    other, _ = synthetic_rfm(seed=1)  # the same kinds of customers, different people
    current = Segmenter(k=4, refits=0, random_state=5).fit(other)
    matching = match_segments(previous, current)

    assert matching.ids == {1: 1, 2: 2, 3: 3, 4: 4}
    assert matching.new_ids == []
    assert matching.compared == ["recency", "frequency", "monetary"]
    assert all(d < 0.3 for d in matching.distances.values())


def test_ids_survive_a_segment_disappearing(
    data: tuple[pd.DataFrame, np.ndarray], previous: Segmenter
) -> None:
    X, truth = data
    # The big spenders (group 0, segment 1) are gone; a fresh fit would number the rest 1, 2, 3.
    rest = X[truth != 0]
    current = Segmenter(k=3, refits=0).fit(rest)
    matching = match_segments(previous, current)

    assert matching.ids == {1: 2, 2: 3, 3: 4}
    assert [p.segment_id for p in current.profiles_] == [2, 3, 4]
    assert sorted(np.unique(current.labels_).tolist()) == [2, 3, 4]
    np.testing.assert_array_equal(current.predict(rest), current.labels_)
    assert current.centroids_.index.tolist() == [2, 3, 4]
    # Matched segments keep the previous model's names.
    old_names = {p.segment_id: p.name for p in previous.profiles_}
    assert {p.segment_id: p.name for p in current.profiles_} == {i: old_names[i] for i in (2, 3, 4)}


def test_a_genuinely_new_segment_gets_a_new_id(
    data: tuple[pd.DataFrame, np.ndarray], previous: Segmenter
) -> None:
    X, _ = data
    rng = np.random.default_rng(9)
    # Wholesale buyers: very frequent, enormous orders, bought yesterday.
    frequency = rng.integers(150, 200, 200).astype(float)
    newcomers = pd.DataFrame(
        {
            "recency": rng.uniform(0, 2, 200),
            "frequency": frequency,
            "monetary": frequency * 5000.0,
            "tenure": rng.uniform(100, 400, 200),
            "average_order_value": 5000.0,
        },
        index=pd.Index([f"n{i}" for i in range(200)], name="customer_id"),
    )
    current = Segmenter(k=5, refits=0).fit(pd.concat([X, newcomers]))
    matching = match_segments(previous, current)

    # The newcomers are the top spenders (fitted id 1) and far from every old segment.
    assert matching.new_ids == [5]
    assert matching.ids[1] == 5
    assert sorted(matching.ids.values()) == [1, 2, 3, 4, 5]
    assert set(current.predict(newcomers)) == {5}


def test_rule_based_segments_are_never_renumbered(data: tuple[pd.DataFrame, np.ndarray]) -> None:
    X, _ = data
    before = Segmenter(model="rfm", refits=0).fit(X)
    after = Segmenter(model="rfm", refits=0).fit(X.iloc[:500])

    assert match_segments(before, after).ids == {i: i for i in range(1, 11)}


def test_migration_matrix() -> None:
    before = pd.Series({"a": 1, "b": 1, "c": 2, "d": 2})
    after = pd.Series({"a": 1, "b": 2, "c": 2, "e": 3})
    matrix = migration_matrix(before, after)

    assert matrix.to_dict() == {
        "1": {"1": 1, "2": 0, "new": 0},
        "2": {"1": 1, "2": 1, "new": 0},
        "3": {"1": 0, "2": 0, "new": 1},
        "gone": {"1": 0, "2": 1, "new": 0},
    }
