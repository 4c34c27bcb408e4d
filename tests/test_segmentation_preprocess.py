"""Preprocessing: missing values, outliers, log, scaling and categorical columns, each counted."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks
from threadpoolctl import threadpool_limits

from segmentation import Segmenter
from segmentation.preprocess import OutlierHandler, build_preprocessor


def frame() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    n = 400
    data = pd.DataFrame(
        {
            "spend": rng.lognormal(4.0, 1.0, n),
            "visits": rng.poisson(5, n).astype(float),
            "age": rng.normal(45, 12, n),
            "channel": rng.choice(["web", "store"], n),
            "tier": rng.choice(["bronze", "silver", "gold"], n),
        }
    )
    data.loc[[0, 1, 2], "age"] = np.nan
    data.loc[3, "age"] = 400.0  # a typo
    data.loc[4, "spend"] = np.nan
    return data


def test_outlier_handler_iqr_and_zscore_bounds() -> None:
    values = np.array([[1.0], [2.0], [3.0], [4.0], [100.0]])
    iqr = OutlierHandler(rule="iqr", action="clip").fit(values)
    # Q1 = 2, Q3 = 4: bounds 2 - 3 = -1 and 4 + 3 = 7.
    assert iqr.lower_.tolist() == [-1.0]
    assert iqr.upper_.tolist() == [7.0]
    assert iqr.n_outliers_.tolist() == [1]
    assert iqr.transform(values).ravel().tolist() == [1.0, 2.0, 3.0, 4.0, 7.0]
    assert iqr.outlying(values).tolist() == [False, False, False, False, True]
    flag = OutlierHandler(rule="iqr", action="flag").fit(values)
    assert flag.transform(values).ravel().tolist() == [1.0, 2.0, 3.0, 4.0, 100.0]
    zscore = OutlierHandler(rule="zscore").fit(np.arange(100.0).reshape(-1, 1))
    assert zscore.lower_[0] == pytest.approx(49.5 - 3 * np.std(np.arange(100.0)))
    assert zscore.n_outliers_.tolist() == [0]
    # Quartiles that coincide give no bounds rather than flagging every other value.
    flat = OutlierHandler().fit(np.array([[0.0], [0.0], [0.0], [0.0], [0.3]]))
    assert flat.n_outliers_.tolist() == [0]


@parametrize_with_checks([OutlierHandler()])
def test_outlier_handler_is_a_scikit_learn_transformer(estimator: Any, check: Any) -> None:
    # One thread: the checks fit hundreds of tiny models, where threads only add overhead.
    with threadpool_limits(limits=1):
        check(estimator)


def test_preprocessor_output_columns() -> None:
    data = frame()
    pre = build_preprocessor(
        ["spend", "visits", "age"],
        {"channel": "onehot", "tier": ["bronze", "silver", "gold"]},
        ["spend"],
        scaling="minmax",
    ).fit(data)
    out = pre.transform(data)

    assert pre.get_feature_names_out().tolist() == [
        "spend",
        "visits",
        "age",
        "channel_store",
        "channel_web",
        "tier",
    ]
    # Min-max scaling puts numeric and ordinal columns in [0, 1]; missing values are imputed.
    assert not np.isnan(out).any()
    assert out[:, [0, 1, 2, 5]].min() == 0.0
    assert out[:, [0, 1, 2, 5]].max() == 1.0
    assert sorted(np.unique(out[:, 5]).tolist()) == [0.0, 0.5, 1.0]
    # An unknown category encodes as all zeros.
    unseen = data.iloc[:1].assign(channel="phone")
    assert pre.transform(unseen)[0, 3:5].tolist() == [0.0, 0.0]


@pytest.mark.parametrize(
    ("params", "dropped_missing", "dropped_outliers"),
    [
        ({"missing": "median"}, 0, 0),
        ({"missing": "drop"}, 4, 0),
        # Tukey's fences also catch a few ordinary tails of 400 draws; |z| > 3 is stricter.
        ({"missing": "mean", "outliers": "drop"}, 0, 10),
        ({"missing": "drop", "outliers": "drop", "outlier_rule": "zscore"}, 4, 3),
    ],
)
def test_dropped_rows_are_counted_and_still_assigned(
    params: dict[str, Any], dropped_missing: int, dropped_outliers: int
) -> None:
    data = frame()
    segmenter = Segmenter(
        k=3,
        features=("spend", "visits", "age", "channel", "tier"),
        categorical={"channel": "onehot", "tier": ["bronze", "silver", "gold"]},
        log=("spend",),
        refits=0,
        **params,
    ).fit(data)
    report = segmenter.preprocessing_

    assert report["rows"] == 400
    assert report["missing"] == {"spend": 1, "visits": 0, "age": 3, "channel": 0, "tier": 0}
    assert report["rows_dropped_missing"] == dropped_missing
    assert report["rows_dropped_outliers"] == dropped_outliers
    assert report["logged"] == ["spend"]
    # Every customer gets a segment, dropped ones too.
    assert len(segmenter.labels_) == 400
    assert set(segmenter.predict(data)) <= {1, 2, 3}
    if params.get("outliers") == "drop":
        # The age typo (400) is among them, and the counts per column add up to at least the rows.
        assert report["outliers"]["age"] >= 1
        assert sum(report["outliers"].values()) >= dropped_outliers


def test_log_auto_picks_skewed_columns() -> None:
    segmenter = Segmenter(k=2, features=("spend", "visits", "age"), log="auto", refits=0)
    segmenter.fit(frame().drop(index=3))

    # Log-normal spend is skewed; Poisson(5) visits and normal ages are not.
    assert segmenter.log_features_ == ("spend",)


@pytest.mark.parametrize("scaling", ["standard", "minmax", "robust"])
def test_scalings(scaling: str) -> None:
    segmenter = Segmenter(k=2, features=("spend", "visits"), scaling=scaling, refits=0).fit(frame())
    space = segmenter.transform_space(frame())
    if scaling == "standard":
        assert space.mean(axis=0) == pytest.approx([0.0, 0.0], abs=1e-9)
    elif scaling == "minmax":
        assert space.min(axis=0).tolist() == [0.0, 0.0]
    else:
        assert np.median(space, axis=0) == pytest.approx([0.0, 0.0], abs=1e-9)
