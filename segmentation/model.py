"""The segmenter: features in, preprocessing, a clustering model, stable named segment ids out."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from numbers import Integral
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.base import BaseEstimator, ClusterMixin, clone
from sklearn.cluster import MiniBatchKMeans
from sklearn.exceptions import ConvergenceWarning
from sklearn.pipeline import Pipeline
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_array, check_is_fitted, validate_data
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from segmentation.models import MODELS, RFM_SEGMENTS, RFMRules, make_clusterer
from segmentation.models.base import MINIBATCH_ABOVE, Clusterer
from segmentation.preprocess import (
    build_preprocessor,
    outlier_handler,
    outlying_rows,
    skewed_columns,
)
from segmentation.profiles import SegmentProfile, profile_segments
from segmentation.profiles import spend_column as _spend_column
from segmentation.selection import KSearch, score_k, search_k
from segmentation.selection import sample_rows as _sample_rows

#: Features log-transformed by default. Money and counts have long right tails (a few customers
#: buy hundreds of times more than the median one) that would otherwise dominate the distances;
#: recency and tenure are bounded by the length of the history and stay linear.
LOG_FEATURES: frozenset[str] = frozenset(
    {"monetary", "frequency", "average_order_value", "total_spend"}
)


#: Rows each Ward tree of the k search is built on at most.
SEARCH_WARD_SAMPLE = 2_000

_OPTIONS: dict[str, tuple[str, ...]] = {
    "model": MODELS,
    "missing": ("median", "mean", "drop"),
    "outliers": ("none", "clip", "flag", "drop"),
    "outlier_rule": ("iqr", "zscore"),
    "scaling": ("standard", "minmax", "robust"),
}


class Segmenter(ClusterMixin, BaseEstimator):  # type: ignore[misc]
    """Customer segments with stable ids: 1 is the highest spending segment.

    ``fit`` selects ``features``, preprocesses them (a ``ColumnTransformer`` from
    :func:`segmentation.preprocess.build_preprocessor`: missing values, log, outliers, scaling,
    categorical encoding), and clusters them with ``model``: ``"kmeans"`` (mini-batch k-means
    above ``minibatch_above`` rows), ``"ward"`` (:class:`~segmentation.models.WardSegments`),
    ``"gmm"`` (:class:`~segmentation.models.GaussianSegments`) or ``"rfm"`` (the rule-based
    :class:`~segmentation.models.RFMRules`, which scores raw recency, frequency and monetary and
    ignores ``k``). With ``k="auto"`` the number of segments is chosen in ``k_range`` by the rule
    of :mod:`segmentation.selection`; with a fixed k that k alone is scored the same way.

    The clusters are numbered 1..k by mean spend (``monetary``, else ``total_spend``), descending
    (by size when there is neither), so the same data and seed always give the same ids; the RFM
    segments have the fixed ids of :data:`~segmentation.models.RFM_SEGMENTS`. Refits keep ids
    through :func:`segmentation.matching.match_segments`.

    ``X`` is normally a DataFrame of named columns, of which ``features`` are clustered and all
    numeric ones are profiled. An array without column names (as scikit-learn's estimator checks
    use) is taken positionally: all of its columns, named ``x0``, ``x1``, …, are clustered.

    Parameters
    ----------
    k:
        Number of segments (at least 1), or ``"auto"``.
    features:
        Names of the columns to cluster on.
    random_state:
        Seed, resolved in ``fit``; ``None`` for a fresh one per fit.
    minibatch_above:
        Row count above which mini-batch k-means replaces k-means.
    model:
        ``"kmeans"``, ``"ward"``, ``"gmm"`` or ``"rfm"``.
    k_range:
        The (smallest, largest) k that ``k="auto"`` tries.
    categorical:
        Column name to ``"onehot"`` or to the ordered list of its categories (ordinal); such
        columns must be among ``features``.
    missing, outliers, outlier_rule, scaling:
        Preprocessing choices (see :mod:`segmentation.preprocess`).
    log:
        Columns to log-transform (those not clustered are ignored), or ``"auto"`` for the
        numeric features whose skewness exceeds 1.
    refits:
        Bootstrap refits per k for the stability score (0 to skip).

    Attributes
    ----------
    labels_:
        Segment id of each training row.
    k_:
        The number of segments fitted.
    search_:
        The :class:`~segmentation.selection.KSearch`: per k inertia, silhouette,
        Calinski-Harabasz, Davies-Bouldin, stability and held-out agreement, and the choice.
    profiles_:
        A :class:`~segmentation.profiles.SegmentProfile` per segment, in id order.
    centroids_:
        Per segment, the median of each numeric clustered feature in original units.
    cluster_to_segment_:
        Segment id of each cluster index of ``clusterer_``.
    features_, log_features_:
        The clustered columns, and those of them that were log-transformed.
    preprocessor_, clusterer_, pipeline_:
        The fitted preprocessing, the fitted model, and both as one ``Pipeline`` (the rule-based
        model works on raw columns, so its pipeline holds the preprocessing only).
    preprocessing_:
        Counts: rows, missing values per column, rows dropped for missing values, outlying
        values per column, rows dropped as outliers.
    algorithm_:
        ``"kmeans"``, ``"minibatch"``, ``"ward"``, ``"gmm"`` or ``"rfm"``.
    inertia_:
        Within-cluster sum of squares in the preprocessed space.
    n_features_in_, feature_names_in_:
        As in scikit-learn; ``feature_names_in_`` only for data with string column names.
    """

    def __init__(
        self,
        k: int | str = 4,
        features: Sequence[str] = ("recency", "frequency", "monetary"),
        random_state: int | None = 0,
        minibatch_above: int = MINIBATCH_ABOVE,
        model: str = "kmeans",
        k_range: tuple[int, int] = (2, 8),
        categorical: Mapping[str, str | Sequence[str]] | None = None,
        missing: str = "median",
        outliers: str = "none",
        outlier_rule: str = "iqr",
        log: Sequence[str] | str = tuple(sorted(LOG_FEATURES)),
        scaling: str = "standard",
        refits: int = 5,
    ) -> None:
        self.k = k
        self.features = features
        self.random_state = random_state
        self.minibatch_above = minibatch_above
        self.model = model
        self.k_range = k_range
        self.categorical = categorical
        self.missing = missing
        self.outliers = outliers
        self.outlier_rule = outlier_rule
        self.log = log
        self.scaling = scaling
        self.refits = refits

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags

    # ------------------------------------------------------------------------------------ fit

    def fit(self, X: pd.DataFrame | npt.ArrayLike, y: None = None) -> Segmenter:
        """Fit the segments to ``X`` (one row per customer) and profile them."""
        self._check_params()
        frame = self._frame(X, reset=True)
        features = self._chosen_features(list(frame.columns))
        categorical = dict(self.categorical or {})
        numeric = [f for f in features if f not in categorical]
        logged = self._logged(frame, numeric)
        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))

        keep = np.ones(len(frame), dtype=bool)
        missing_counts = frame[features].isna().sum()
        if self.missing == "drop":
            keep &= ~frame[features].isna().any(axis=1).to_numpy()
        preprocessor = build_preprocessor(
            numeric,
            categorical,
            logged,
            self.missing,  # type: ignore[arg-type]
            self.outliers,  # type: ignore[arg-type]
            self.outlier_rule,  # type: ignore[arg-type]
            self.scaling,  # type: ignore[arg-type]
        )
        preprocessor.fit(frame[keep])
        handler = outlier_handler(preprocessor)
        outlier_counts = (
            dict(zip(numeric, handler.n_outliers_.tolist(), strict=True)) if handler else {}
        )
        dropped_missing = int((~keep).sum())
        dropped_outliers = 0
        if self.outliers == "drop":
            outlying = outlying_rows(preprocessor, frame) & keep
            dropped_outliers = int(outlying.sum())
            keep &= ~outlying
            preprocessor = clone(preprocessor).fit(frame[keep])
        fit_frame = frame[keep]
        k_min = self.k if isinstance(self.k, Integral) else self.k_range[0]
        if len(fit_frame) < max(int(k_min), 2):
            raise ValueError(
                f"{len(fit_frame)} rows are left to fit after dropping {dropped_missing} with "
                f"missing values and {dropped_outliers} outliers; need at least {max(k_min, 2)}"
            )
        space = np.asarray(preprocessor.transform(fit_frame), dtype=np.float64)

        clusterer, clusters, search = self._cluster(fit_frame, space, seed)
        k = int(clusterer.n_clusters)
        if isinstance(clusterer, RFMRules):
            cluster_to_segment = np.arange(1, k + 1, dtype=np.int64)
        else:
            order = _segment_order(fit_frame, clusters, k)
            cluster_to_segment = np.empty(k, dtype=np.int64)
            cluster_to_segment[order] = np.arange(1, k + 1)

        self.preprocessor_ = preprocessor
        self.clusterer_ = clusterer
        self.pipeline_ = Pipeline(
            [("preprocess", preprocessor)]
            + ([] if isinstance(clusterer, RFMRules) else [("cluster", clusterer)])
        )
        self.algorithm_ = "minibatch" if isinstance(clusterer, MiniBatchKMeans) else str(self.model)
        self.k_ = k
        self.search_ = search
        self.features_ = tuple(features)
        self.log_features_ = tuple(logged)
        self.cluster_to_segment_ = cluster_to_segment
        self.labels_ = cluster_to_segment[self._clusters(frame)]
        self.inertia_ = next(
            (s.inertia for s in search.scores if s.k == k and len(space) == search.sample_size),
            _within(space, clusters),
        )
        self.preprocessing_: dict[str, Any] = {
            "rows": len(frame),
            "missing": {c: int(missing_counts[c]) for c in features},
            "missing_strategy": self.missing,
            "rows_dropped_missing": dropped_missing,
            "outliers": outlier_counts,
            "outlier_rule": self.outlier_rule if self.outliers != "none" else None,
            "outlier_action": self.outliers,
            "rows_dropped_outliers": dropped_outliers,
            "logged": list(logged),
            "scaling": self.scaling,
        }
        ids = list(range(1, k + 1))
        self.centroids_ = _medians(frame[numeric], self.labels_, ids)
        profiled = frame.select_dtypes("number")
        profiles = profile_segments(profiled, self.labels_, ids)
        if isinstance(clusterer, RFMRules):
            profiles = [_renamed(p, RFM_SEGMENTS[p.segment_id - 1]) for p in profiles]
        self.profiles_: list[SegmentProfile] = profiles
        return self

    def _cluster(
        self, frame: pd.DataFrame, space: npt.NDArray[np.float64], seed: int
    ) -> tuple[Any, npt.NDArray[np.int64], KSearch]:
        if self.model == "rfm":
            rules = RFMRules().fit(frame)
            clusters = np.asarray(rules.labels_, dtype=np.int64)
            with warnings.catch_warnings(), threadpool_limits(limits=1):
                warnings.simplefilter("ignore", ConvergenceWarning)
                score = score_k(space, rules.n_clusters, self._maker(len(space)), seed, 0, clusters)
            k = rules.n_clusters
            return (
                rules,
                clusters,
                KSearch(
                    [score], None, k, "the rfm model has a fixed set of named segments", len(space)
                ),
            )
        sample = _sample_rows(space, _search_sample(), seed)
        make = self._maker(len(sample))
        # Refits on bootstrap resamples of tiny or degenerate data can find fewer distinct
        # points than clusters; that only lowers the stability score, it is not a user error.
        # The search fits dozens of models on a sample of at most 20,000 rows: OpenMP and BLAS
        # threads cost more than they save there, and on a busy machine spinning threads made
        # each small k-means fit 10 to 100 times slower than one thread.
        with (
            warnings.catch_warnings(),
            threadpool_limits(limits=1),
        ):
            warnings.simplefilter("ignore", ConvergenceWarning)
            if self.k == "auto":
                low, high = self.k_range
                search = search_k(
                    sample, range(low, min(high, len(sample) - 1) + 1), make, seed, self.refits
                )
            else:
                search = KSearch(
                    [score_k(sample, int(self.k), make, seed, self.refits)],
                    None,
                    int(self.k),
                    f"k = {self.k} is set in the configuration",
                    len(sample),
                )
        # One thread for the final fit too: mini-batch k-means works in batches of 4,096 rows,
        # each a tiny parallel region; on the shared 2-core machine a million rows took 14 s on
        # two threads and 4 to 5 s on one.
        with threadpool_limits(limits=1):
            clusterer = make_clusterer(
                str(self.model), search.chosen, len(space), seed, self.minibatch_above
            ).fit(space)
        clusters = np.asarray(clusterer.predict(space), dtype=np.int64)
        return clusterer, clusters, search

    def _maker(self, n_rows: int) -> Any:
        model, above = str(self.model), self.minibatch_above

        def make(k: int, seed: int) -> Clusterer:
            # The search builds dozens of Ward trees: on 2,000 rows each takes a tenth of a
            # second, on 5,000 (the final fit's sample) more than a second.
            return make_clusterer(
                "kmeans" if model == "rfm" else model, k, n_rows, seed, above, SEARCH_WARD_SAMPLE
            )

        return make

    # -------------------------------------------------------------------------------- predict

    def predict(self, X: pd.DataFrame | npt.ArrayLike) -> npt.NDArray[np.int64]:
        """Segment id of each row of ``X``, which has the columns ``fit`` saw.

        A DataFrame's columns are matched by name (order and extra columns do not matter).
        """
        check_is_fitted(self)
        frame = self._frame(X, reset=False)
        result: npt.NDArray[np.int64] = self.cluster_to_segment_[self._clusters(frame)]
        return result

    def transform_space(self, X: pd.DataFrame) -> npt.NDArray[np.float64]:
        """``X`` in the preprocessed space the model clusters in."""
        check_is_fitted(self)
        return np.asarray(self.preprocessor_.transform(self._frame(X, reset=False)))

    def _clusters(self, frame: pd.DataFrame) -> npt.NDArray[np.int64]:
        if isinstance(self.clusterer_, RFMRules):
            return self.clusterer_.predict(frame)
        space = self.preprocessor_.transform(frame)
        return np.asarray(self.clusterer_.predict(space), dtype=np.int64)

    # ------------------------------------------------------------------------------- checking

    def _frame(self, X: Any, reset: bool) -> pd.DataFrame:
        """``X`` as a DataFrame with string column names, validated."""
        named = isinstance(X, pd.DataFrame) and all(isinstance(c, str) for c in X.columns)
        minimum = (int(self.k) if isinstance(self.k, Integral) else self.k_range[0]) if reset else 1
        if named:
            fitted = getattr(self, "feature_names_in_", None)
            if not reset and fitted is not None:
                missing = [c for c in fitted if c not in X.columns]
                if missing:
                    raise ValueError(
                        f"X lacks the column(s) {missing} that the model was fitted on"
                    )
                X = X[list(fitted)]
            validate_data(self, X, reset=reset, skip_check_array=True)
            categorical = set(self.categorical or {})
            features = self.features if isinstance(self.features, (list, tuple)) else ()
            numeric = [c for c in features if c in X.columns and c not in categorical]
            check_array(
                X[numeric] if numeric else np.zeros((len(X), 1)),
                dtype=np.float64,
                ensure_all_finite="allow-nan",
                ensure_min_samples=minimum,
            )
            frame: pd.DataFrame = X
            return frame
        values = validate_data(
            self,
            X,
            dtype=np.float64,
            ensure_all_finite="allow-nan",
            ensure_min_samples=minimum,
            reset=reset,
        )
        return pd.DataFrame(values, columns=[f"x{i}" for i in range(values.shape[1])])

    def _check_params(self) -> None:
        k = self.k
        if k != "auto" and (not isinstance(k, Integral) or isinstance(k, bool) or k < 1):
            raise ValueError(f"k must be a positive integer or 'auto', got {k!r}")
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
        for name, allowed in _OPTIONS.items():
            value = getattr(self, name)
            if value not in allowed:
                raise ValueError(f"{name} must be one of {list(allowed)}, got {value!r}")
        low, high = self.k_range
        if not 2 <= low <= high:
            raise ValueError(
                f"k_range must be (low, high) with 2 <= low <= high, got {self.k_range!r}"
            )
        if self.k == "auto" and self.model == "rfm":
            raise ValueError("k = 'auto' does not apply to the rfm model (its segments are fixed)")

    def _chosen_features(self, names: list[str]) -> list[str]:
        categorical = list(self.categorical or {})
        if not hasattr(self, "feature_names_in_"):
            if categorical:
                raise ValueError("categorical columns need a DataFrame with named columns")
            return names
        missing = [f for f in self.features if f not in names]
        if missing:
            raise ValueError(f"features {missing} are not columns of X; X has {names}")
        outside = [c for c in categorical if c not in self.features]
        if outside:
            raise ValueError(f"categorical columns {outside} must also be listed in features")
        return list(self.features)

    def _logged(self, frame: pd.DataFrame, numeric: list[str]) -> list[str]:
        if self.log == "auto":
            return skewed_columns(frame, numeric) if numeric else []
        if isinstance(self.log, str):
            raise ValueError(f"log must be a list of columns or 'auto', got {self.log!r}")
        return [c for c in numeric if c in set(self.log)]


def _search_sample() -> int:
    from segmentation import selection

    return selection.SEARCH_SAMPLE


def _segment_order(
    frame: pd.DataFrame, clusters: npt.NDArray[np.int64], k: int
) -> npt.NDArray[np.int64]:
    """Cluster indices in segment id order: mean spend descending, then size descending, then
    the index, so that ties cannot make the order depend on chance."""
    sizes = np.bincount(clusters, minlength=k)
    spend_column = _spend_column(frame)
    if spend_column is not None:
        spend = (
            frame[spend_column]
            .astype(np.float64)
            .groupby(clusters)
            .mean()
            .reindex(range(k), fill_value=-np.inf)
        ).to_numpy()
    else:
        spend = np.zeros(k)
    keys = [(-spend[c], -sizes[c], c) for c in range(k)]
    return np.array(sorted(range(k), key=lambda c: keys[c]), dtype=np.int64)


def _medians(
    frame: pd.DataFrame, labels: npt.NDArray[np.int64], ids: Sequence[int]
) -> pd.DataFrame:
    medians = frame.astype(np.float64).groupby(labels).median().reindex(list(ids))
    medians.index = pd.Index(list(ids), name="segment_id")
    return medians


def _within(space: npt.NDArray[np.float64], clusters: npt.NDArray[np.int64]) -> float:
    from segmentation.selection import _inertia

    return _inertia(space, clusters)


def _renamed(profile: SegmentProfile, name: str) -> SegmentProfile:
    from dataclasses import replace

    return replace(profile, name=name)
