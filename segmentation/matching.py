"""Stable segment ids across refits: match the new clusters to the old ones.

A refit (new data, new settings) numbers its clusters afresh. :func:`match_segments` pairs each
new segment with an old one by the Hungarian method (``scipy.optimize.linear_sum_assignment``)
on the distances between their centroids, both placed in the *new* model's preprocessed space
(the old centroids are stored in original units, so the same transformation applies to both).
A matched pair keeps the old id and the old name; a new segment that is left over (the new model
has more segments) or whose partner lies more than :data:`NEW_SEGMENT_DISTANCE` away is
genuinely new and gets the next unused id. Only the numeric features the two models share are
compared; without any, nothing is matched and the ids stay as fitted.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment

from segmentation.model import Segmenter
from segmentation.preprocess import numeric_space
from segmentation.profiles import unique_names

#: Centroid distance (in the preprocessed space: standard deviations, for standard scaling)
#: beyond which a matched pair is treated as a new segment rather than the old one moved. Refits
#: of the same customers move centroids by a few tenths at most; a whole standard deviation is
#: a different kind of customer.
NEW_SEGMENT_DISTANCE = 1.0


@dataclass(frozen=True)
class Matching:
    """How a refit's segments relate to the previous model's.

    ``ids`` maps each fitted id of the new model to its final id; ``distances`` gives, per final
    id, the distance to the old centroid it was matched to (absent for new segments).
    """

    ids: dict[int, int]
    distances: dict[int, float]
    new_ids: list[int]
    compared: list[str]


def match_segments(
    previous: Segmenter, current: Segmenter, max_distance: float = NEW_SEGMENT_DISTANCE
) -> Matching:
    """Renumber ``current`` (fitted, ids 1..k) so that it keeps ``previous``'s ids and names.

    ``current`` is changed in place: ``cluster_to_segment_``, ``labels_``, ``centroids_`` and
    ``profiles_`` carry the final ids, and matched segments keep the old automatic name.
    """
    if previous.algorithm_ == "rfm" or current.algorithm_ == "rfm":
        # Rule-based segments have fixed ids already.
        identity = {p.segment_id: p.segment_id for p in current.profiles_}
        return Matching(identity, {}, [], [])
    numeric = (
        list(current.preprocessor_.transformers_[0][2])
        if (
            current.preprocessor_.transformers_
            and current.preprocessor_.transformers_[0][0] == "numeric"
        )
        else []
    )
    compared = [c for c in numeric if c in previous.centroids_.columns]
    new_centroids = current.centroids_.dropna()
    old_centroids = previous.centroids_.dropna()
    fitted_ids = [p.segment_id for p in current.profiles_]
    mapping: dict[int, int] = {}
    distances: dict[int, float] = {}
    if compared and len(old_centroids) and len(new_centroids):
        new_points = _place(current, new_centroids, numeric, compared)
        old_points = _place(current, old_centroids, numeric, compared)
        cost = np.sqrt(((new_points[:, None, :] - old_points[None, :, :]) ** 2).sum(axis=2))
        rows, cols = linear_sum_assignment(cost)
        for row, col in zip(rows, cols, strict=True):
            if cost[row, col] <= max_distance:
                old_id = int(old_centroids.index[col])
                mapping[int(new_centroids.index[row])] = old_id
                distances[old_id] = float(cost[row, col])
    taken = set(mapping.values()) | {p.segment_id for p in previous.profiles_}
    next_id = max(taken, default=0) + 1
    new_ids = []
    for fitted in fitted_ids:
        if fitted not in mapping:
            mapping[fitted] = next_id
            new_ids.append(next_id)
            next_id += 1
    old_names = {p.segment_id: p.name for p in previous.profiles_}
    _renumber(current, mapping, old_names)
    return Matching(mapping, distances, sorted(new_ids), compared)


def _place(
    model: Segmenter, centroids: pd.DataFrame, numeric: list[str], compared: list[str]
) -> np.ndarray:
    """Centroids in ``model``'s numeric space, compared columns only (others at the median)."""
    frame = pd.DataFrame(np.nan, index=centroids.index, columns=numeric)
    frame[compared] = centroids[compared].to_numpy(dtype=np.float64)
    space = numeric_space(model.preprocessor_, frame)
    positions = [numeric.index(c) for c in compared]
    return space[:, positions]


def _renumber(model: Segmenter, mapping: dict[int, int], old_names: dict[int, str]) -> None:
    lookup = np.zeros(max(mapping) + 1, dtype=np.int64)
    for fitted, final in mapping.items():
        lookup[fitted] = final
    model.cluster_to_segment_ = lookup[model.cluster_to_segment_]
    model.labels_ = lookup[model.labels_]
    centroids = model.centroids_.rename(index=mapping).sort_index()
    centroids.index.name = "segment_id"
    model.centroids_ = centroids
    profiles = sorted(
        (
            replace(
                p,
                segment_id=mapping[p.segment_id],
                name=old_names.get(mapping[p.segment_id], p.name),
            )
            for p in model.profiles_
        ),
        key=lambda p: p.segment_id,
    )
    names = unique_names([p.name for p in profiles])
    model.profiles_ = [replace(p, name=n) for p, n in zip(profiles, names, strict=True)]


def migration_matrix(before: pd.Series, after: pd.Series) -> pd.DataFrame:
    """Customers per (old segment, new segment): rows old ids, columns new ids.

    ``before`` and ``after`` are segment ids by customer id; customers in only one of them count
    under ``"new"`` (no old segment) or ``"gone"`` (no new segment).
    """
    joined = pd.concat([before.rename("old"), after.rename("new")], axis=1)
    old = joined["old"].astype("Int64").astype(object).where(joined["old"].notna(), "new")
    new = joined["new"].astype("Int64").astype(object).where(joined["new"].notna(), "gone")
    return pd.crosstab(old.astype(str), new.astype(str)).rename_axis(index="old", columns="new")
