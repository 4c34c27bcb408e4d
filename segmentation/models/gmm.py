"""Gaussian mixture segments: soft clusters of any ellipsoid shape, assigned by probability."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.mixture import GaussianMixture
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

#: Rows the mixture is fitted on at most: EM passes over every row on each of its iterations,
#: and 200,000 rows pin the parameters of a handful of components to well under 1 %.
GMM_SAMPLE = 200_000


class GaussianSegments(ClusterMixin, BaseEstimator):  # type: ignore[misc]
    """A full-covariance Gaussian mixture of ``n_clusters`` components; each row belongs to its
    most probable component.

    Parameters
    ----------
    n_clusters:
        Number of components.
    sample_size:
        Most rows EM is run on (a fixed-seed sample above that).
    random_state:
        Seed of the sample and of the initialisation.

    Attributes
    ----------
    mixture_:
        The fitted :class:`sklearn.mixture.GaussianMixture`.
    cluster_centers_:
        The components' means.
    labels_:
        Component of each training row.
    """

    def __init__(
        self, n_clusters: int = 4, sample_size: int = GMM_SAMPLE, random_state: int | None = 0
    ) -> None:
        self.n_clusters = n_clusters
        self.sample_size = sample_size
        self.random_state = random_state

    def fit(self, X: npt.ArrayLike, y: None = None) -> GaussianSegments:
        values = validate_data(self, X, dtype=np.float64, ensure_min_samples=2)
        rng = check_random_state(self.random_state)
        n = len(values)
        rows = (
            values[np.sort(rng.choice(n, self.sample_size, replace=False))]
            if (n > self.sample_size)
            else values
        )
        self.mixture_ = GaussianMixture(
            n_components=self.n_clusters,
            covariance_type="full",
            n_init=2,
            # A small ridge keeps components fitted to a few identical customers invertible.
            reg_covar=1e-4,
            random_state=rng.randint(np.iinfo(np.int32).max),
        ).fit(rows)
        self.cluster_centers_ = np.asarray(self.mixture_.means_, dtype=np.float64)
        self.labels_ = self.predict(values)
        return self

    def predict(self, X: npt.ArrayLike) -> npt.NDArray[np.int64]:
        check_is_fitted(self)
        values = validate_data(self, X, dtype=np.float64, reset=False)
        return np.asarray(self.mixture_.predict(values), dtype=np.int64)
