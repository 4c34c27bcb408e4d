"""The clusterer interface and the factory that builds one by name."""

from __future__ import annotations

from typing import Literal, Protocol

import numpy as np
import numpy.typing as npt
from sklearn.cluster import KMeans, MiniBatchKMeans

#: Model names accepted by the configuration.
ModelName = Literal["kmeans", "ward", "gmm", "rfm"]
MODELS: tuple[str, ...] = ("kmeans", "ward", "gmm", "rfm")

#: Above this many rows k-means is mini-batch k-means: full k-means with ten initialisations takes
#: several seconds per million rows, mini-batch k-means a fraction of that, at a small cost in
#: inertia that does not matter for segments of marketing size.
MINIBATCH_ABOVE = 200_000


class Clusterer(Protocol):
    """What a segmentation model provides, in the preprocessed space.

    ``fit(X)`` learns ``n_clusters`` clusters from the rows of ``X`` and returns the clusterer;
    ``predict(X)`` gives each row's cluster index, 0 to ``n_clusters - 1``; ``cluster_centers_``
    holds one centre per cluster (a k-means centroid, a mixture component's mean, the mean of a
    Ward cluster).
    """

    n_clusters: int
    cluster_centers_: npt.NDArray[np.float64]

    def fit(self, X: npt.NDArray[np.float64], y: None = None) -> Clusterer: ...

    def predict(self, X: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]: ...


def make_clusterer(
    model: str,
    k: int,
    n_rows: int,
    seed: int,
    minibatch_above: int = MINIBATCH_ABOVE,
    ward_sample: int | None = None,
) -> Clusterer:
    """An unfitted clusterer for ``n_rows`` rows: k-means (mini-batch above ``minibatch_above``
    rows), Ward (its tree on at most ``ward_sample`` rows, default
    :data:`~segmentation.models.ward.WARD_SAMPLE`) or a Gaussian mixture."""
    from segmentation.models.gmm import GaussianSegments
    from segmentation.models.ward import WardSegments

    if model == "kmeans":
        if n_rows > minibatch_above:
            # Three initialisations (scikit-learn's default for mini-batch) on batches of 4096:
            # enough for stable centres of a few large segments, and fast at millions of rows.
            return MiniBatchKMeans(n_clusters=k, n_init=3, batch_size=4096, random_state=seed)  # type: ignore[no-any-return]
        return KMeans(n_clusters=k, n_init=10, random_state=seed)  # type: ignore[no-any-return]
    if model == "ward":
        if ward_sample is not None:
            return WardSegments(n_clusters=k, sample_size=ward_sample, random_state=seed)
        return WardSegments(n_clusters=k, random_state=seed)
    if model == "gmm":
        return GaussianSegments(n_clusters=k, random_state=seed)
    raise ValueError(f"model must be one of 'kmeans', 'ward', 'gmm', got {model!r}")
