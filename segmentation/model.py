"""The k-means segmenter: RFM features in, stable, named segment ids out."""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.cluster import KMeans, MiniBatchKMeans
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from segmentation.profiles import SegmentProfile, profile_segments

#: Features that are log-transformed before scaling. Money and counts have long right tails (a few
#: customers buy hundreds of times more than the median one) that would otherwise dominate the
#: distances; recency and tenure are bounded by the length of the history and stay linear.
LOG_FEATURES: frozenset[str] = frozenset({"monetary", "frequency", "average_order_value"})

#: Above this many rows :class:`Segmenter` uses mini-batch k-means: full k-means with ten
#: initialisations takes several seconds per million rows, mini-batch k-means a fraction of that,
#: at a small cost in inertia that does not matter for segments of marketing size.
MINIBATCH_ABOVE = 200_000


class Segmenter(ClusterMixin, BaseEstimator):  # type: ignore[misc]
    """k-means segments with stable ids: 1 is the highest spending segment, k the lowest.

    ``fit`` runs a scikit-learn :class:`~sklearn.pipeline.Pipeline`: select ``features``; apply
    ``sign(x) * log1p(|x|)`` to those in :data:`LOG_FEATURES` (the sign keeps net returns
    finite); standardise; k-means (``n_init=10``), or mini-batch k-means above ``minibatch_above``
    rows. The clusters are then numbered 1..k by mean ``monetary`` value, descending (by size when
    the data has no ``monetary`` column), so the same data and seed always give the same ids.

    ``X`` is normally the frame of :func:`segmentation.rfm_features`: named numeric columns, of
    which ``features`` are clustered and all are profiled. An array without column names (as
    scikit-learn's estimator checks use) is taken positionally: all of its columns, named ``x0``,
    ``x1``, …, are clustered, none log-transformed, and ``features`` does not apply.

    Parameters
    ----------
    k:
        Number of segments (at least 1).
    features:
        Names of the columns to cluster on.
    random_state:
        Seed of the k-means initialisation, resolved in ``fit``; ``None`` for a fresh one per fit.
    minibatch_above:
        Row count above which mini-batch k-means replaces k-means (default
        :data:`MINIBATCH_ABOVE`).

    Attributes
    ----------
    labels_:
        Segment id (1..k) of each training row.
    profiles_:
        A :class:`~segmentation.profiles.SegmentProfile` per segment, in id order.
    centroids_:
        The cluster centres in original feature units (the log and scaling undone; for a logged
        column that is close to the segment's geometric mean), indexed by segment id.
    cluster_to_segment_:
        Segment id of each k-means cluster index: ``labels_ == cluster_to_segment_[kmeans labels]``.
    features_, log_features_:
        The clustered columns, and those of them that were log-transformed.
    algorithm_:
        ``"kmeans"`` or ``"minibatch"``.
    pipeline_:
        The fitted preprocessing and clustering pipeline.
    inertia_:
        Sum of squared distances to the nearest centre, in the standardised space.
    n_features_in_, feature_names_in_:
        As in scikit-learn; ``feature_names_in_`` only for data with string column names.
    """

    def __init__(
        self,
        k: int = 4,
        features: Sequence[str] = ("recency", "frequency", "monetary"),
        random_state: int | None = 0,
        minibatch_above: int = MINIBATCH_ABOVE,
    ) -> None:
        self.k = k
        self.features = features
        self.random_state = random_state
        self.minibatch_above = minibatch_above

    def fit(self, X: pd.DataFrame | npt.ArrayLike, y: None = None) -> Segmenter:
        """Fit the segments to ``X`` (one row per customer) and profile them."""
        self._check_params()
        values = validate_data(self, X, dtype=np.float64, ensure_min_samples=self.k)
        names = _column_names(self, values.shape[1])
        features = self._chosen_features(names)
        positions = [names.index(f) for f in features]
        logged = [i for i, f in enumerate(features) if f in LOG_FEATURES]

        seed = check_random_state(self.random_state).randint(np.iinfo(np.int32).max)
        minibatch = values.shape[0] > self.minibatch_above
        cluster: KMeans | MiniBatchKMeans = (
            # Three initialisations (scikit-learn's default for mini-batch) on batches of 4096:
            # enough for stable centres of a few large segments, and fast at millions of rows.
            MiniBatchKMeans(n_clusters=self.k, n_init=3, batch_size=4096, random_state=seed)
            if minibatch
            else KMeans(n_clusters=self.k, n_init=10, random_state=seed)
        )
        pipeline = Pipeline(
            [
                ("select", FunctionTransformer(_take_columns, kw_args={"columns": positions})),
                (
                    "log",
                    FunctionTransformer(
                        _signed_log1p,
                        inverse_func=_signed_expm1,
                        kw_args={"columns": logged},
                        inv_kw_args={"columns": logged},
                        check_inverse=False,
                    ),
                ),
                ("scale", StandardScaler()),
                ("cluster", cluster),
            ]
        )
        pipeline.fit(values)
        clusters = np.asarray(pipeline.named_steps["cluster"].labels_, dtype=np.int64)

        frame = pd.DataFrame(values, columns=names)
        centres = pipeline[1:-1].inverse_transform(pipeline.named_steps["cluster"].cluster_centers_)
        order = _segment_order(frame, clusters, centres, self.k)
        cluster_to_segment = np.empty(self.k, dtype=np.int64)
        cluster_to_segment[order] = np.arange(1, self.k + 1)

        self.pipeline_ = pipeline
        self.algorithm_ = "minibatch" if minibatch else "kmeans"
        self.features_ = tuple(features)
        self.log_features_ = tuple(features[i] for i in logged)
        self.cluster_to_segment_ = cluster_to_segment
        self.labels_ = cluster_to_segment[clusters]
        self.inertia_ = float(pipeline.named_steps["cluster"].inertia_)
        self.centroids_ = pd.DataFrame(
            centres[order],
            index=pd.RangeIndex(1, self.k + 1, name="segment_id"),
            columns=list(features),
        )
        self.profiles_: list[SegmentProfile] = profile_segments(frame, self.labels_, self.k)
        return self

    def predict(self, X: pd.DataFrame | npt.ArrayLike) -> npt.NDArray[np.int64]:
        """Segment id (1..k) of each row of ``X``, which has the columns ``fit`` saw.

        A DataFrame's columns are matched by name (order and extra columns do not matter).
        """
        check_is_fitted(self)
        fitted_names = getattr(self, "feature_names_in_", None)
        if isinstance(X, pd.DataFrame) and fitted_names is not None:
            missing = [c for c in fitted_names if c not in X.columns]
            if missing:
                raise ValueError(f"X lacks the column(s) {missing} that the model was fitted on")
            X = X[list(fitted_names)]
        values = validate_data(self, X, dtype=np.float64, reset=False)
        clusters = np.asarray(self.pipeline_.predict(values), dtype=np.int64)
        result: npt.NDArray[np.int64] = self.cluster_to_segment_[clusters]
        return result

    def _check_params(self) -> None:
        if not isinstance(self.k, Integral) or isinstance(self.k, bool) or self.k < 1:
            raise ValueError(f"k must be a positive integer, got {self.k!r}")
        if (
            isinstance(self.features, str)
            or not isinstance(self.features, Sequence)
            or not self.features
            or not all(isinstance(f, str) for f in self.features)
        ):
            raise ValueError(
                f"features must be a non-empty sequence of column names, got {self.features!r}"
            )
        if len(set(self.features)) != len(self.features):
            raise ValueError(f"features must not repeat a column, got {list(self.features)}")
        if (
            not isinstance(self.minibatch_above, Integral)
            or isinstance(self.minibatch_above, bool)
            or self.minibatch_above < 0
        ):
            raise ValueError(
                f"minibatch_above must be a non-negative integer, got {self.minibatch_above!r}"
            )

    def _chosen_features(self, names: list[str]) -> list[str]:
        if not hasattr(self, "feature_names_in_"):
            return names
        missing = [f for f in self.features if f not in names]
        if missing:
            raise ValueError(f"features {missing} are not columns of X; X has {names}")
        return list(self.features)


def _column_names(estimator: Segmenter, n_columns: int) -> list[str]:
    fitted_names = getattr(estimator, "feature_names_in_", None)
    if fitted_names is not None:
        return [str(name) for name in fitted_names]
    return [f"x{i}" for i in range(n_columns)]


def _segment_order(
    frame: pd.DataFrame, clusters: npt.NDArray[np.int64], centres: npt.NDArray[Any], k: int
) -> npt.NDArray[np.int64]:
    """Cluster indices in segment id order: mean monetary value descending, then size
    descending, then the centre coordinates, so that ties cannot make the order depend on chance.
    """
    sizes = np.bincount(clusters, minlength=k)
    if "monetary" in frame.columns:
        spend = (
            frame["monetary"].groupby(clusters).mean().reindex(range(k), fill_value=-np.inf)
        ).to_numpy()
    else:
        spend = np.zeros(k)
    keys = [(-spend[c], -sizes[c], *centres[c].tolist()) for c in range(k)]
    return np.array(sorted(range(k), key=lambda c: keys[c]), dtype=np.int64)


def _take_columns(X: npt.NDArray[Any], columns: list[int]) -> npt.NDArray[Any]:
    return X[:, columns]


def _signed_log1p(X: npt.NDArray[Any], columns: list[int]) -> npt.NDArray[Any]:
    if not columns:
        return X
    out = np.array(X, dtype=np.float64, copy=True)
    out[:, columns] = np.sign(out[:, columns]) * np.log1p(np.abs(out[:, columns]))
    return out


def _signed_expm1(X: npt.NDArray[Any], columns: list[int]) -> npt.NDArray[Any]:
    if not columns:
        return X
    out = np.array(X, dtype=np.float64, copy=True)
    out[:, columns] = np.sign(out[:, columns]) * np.expm1(np.abs(out[:, columns]))
    return out
