"""A fitted model's report as plain data: what ``campaign segment report --format json`` prints.

The same numbers feed the terminal tables and the HTML report (:mod:`segmentation.html`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import pandas as pd

from segmentation.model import Segmenter


def report_data(
    estimator: Segmenter,
    profiles: Sequence[Mapping[str, Any]],
    version: int,
    created_at: datetime | None,
    migration: pd.DataFrame | None = None,
    new_ids: Sequence[int] = (),
) -> dict[str, Any]:
    """The report of a fitted model as JSON-ready data.

    Keys: ``model`` (version, algorithm, k, features, when, why this k), ``segments`` (per
    segment: id, name, size, share, revenue share, feature means, medians and z-scores),
    ``k_search`` (per k: inertia, silhouette, Calinski-Harabasz, Davies-Bouldin, bootstrap
    stability and its standard deviation, held-out agreement), ``knee``, ``preprocessing``
    (counts) and ``migration`` (customers by old and new segment, after a refit).
    NaN (a metric that is undefined) becomes ``null``.
    """
    search = estimator.search_
    data = {
        "model": {
            "version": version,
            "algorithm": estimator.algorithm_,
            "k": estimator.k_,
            "features": list(estimator.features_),
            "fitted_at": created_at.isoformat(timespec="seconds") if created_at else None,
            "k_reason": search.reason,
            "search_sample": search.sample_size,
            "new_segments": list(new_ids),
        },
        "segments": [
            {
                "id": int(p["segment_id"]),
                "name": p["name"],
                "size": int(p["size"]),
                "share": p["share"],
                "revenue_share": p["revenue_share"],
                "means": dict(p["means"]),
                "medians": dict(p["medians"]),
                "zscores": dict(p["zscores"]),
                "positions": dict(p.get("positions", {})),
            }
            for p in profiles
        ],
        "k_search": [dataclasses.asdict(score) for score in search.scores],
        "knee": search.knee,
        "chosen_k": search.chosen,
        "preprocessing": estimator.preprocessing_,
        "migration": _migration(migration),
    }
    return clean(data)  # type: ignore[no-any-return]


def _migration(matrix: pd.DataFrame | None) -> dict[str, dict[str, int]] | None:
    if matrix is None:
        return None
    return {
        str(old): {str(new): int(count) for new, count in row.items() if count}
        for old, row in matrix.iterrows()
    }


def clean(value: Any) -> Any:
    """Replace NaN and infinities (not JSON) by None, recursively."""
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    return value
