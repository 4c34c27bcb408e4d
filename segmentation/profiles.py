"""What each segment looks like: sizes, shares, typical values, and a descriptive name.

A name is read off the segment's z-scores (how far its mean lies from the population mean, in
population standard deviations) for three RFM columns:

- spend, from ``monetary``: ``High`` when ``z >= 0.5``, ``Low`` when ``z <= -0.2``, else ``Mid``;
- ``recency`` (days since the last purchase): ``recent`` when ``z < 0``, else ``lapsed``;
- ``frequency``: ``frequent`` when ``z > 0``, else ``occasional``;

giving e.g. ``"High spend, recent, frequent"``. The spend band is asymmetric because spending is
skewed to the right: a few large customers lift the mean and the standard deviation, so a
segment of ordinary small buyers sits only a little below the mean (its z-score cannot fall below
``-mean / std``, about -0.45 on the CDNOW data), while big spenders sit far above it. A column
missing from the data drops its term. With none of the three (customer tables such as the
Wholesale layout) the name lists the two columns farthest from the population, such as ``"High
Grocery, high Detergents_Paper"``, or ``"Typical"`` when no column is a quarter of a standard
deviation away.

Two segments can get the same name; the one with the smaller id (the higher spending one) keeps
it and the others get ``" (2)"``, ``" (3)"``, … appended, so names are unique within a model.
Business names from the configuration replace the automatic ones with :func:`profiles_with_names`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt
import pandas as pd

#: z-score of mean spend at or above which a segment is "High spend".
HIGH_SPEND_Z = 0.5
#: z-score of mean spend at or below which a segment is "Low spend".
LOW_SPEND_Z = -0.2
#: Without RFM columns, the smallest |z-score| that a column needs to appear in a name.
TRAIT_Z = 0.25
#: The column whose sum is a segment's revenue: ``monetary``, else ``total_spend`` (see
#: :func:`spend_column`).
SPEND_COLUMNS: tuple[str, ...] = ("monetary", "total_spend")


@dataclass(frozen=True)
class SegmentProfile:
    """One segment of a fitted model.

    Parameters
    ----------
    segment_id:
        1 to k; 1 is the segment with the highest mean monetary value.
    name:
        The descriptive name (or the business name given in the configuration).
    size:
        Customers in the segment.
    share:
        ``size`` over all customers.
    revenue_share:
        The segment's share of the total monetary value (0 when the total is 0, NaN when the data
        has no ``monetary`` column).
    means, medians:
        Per column of the data (every column, not only the clustering features).
    zscores:
        Per column: (segment mean - population mean) / population standard deviation, 0 for a
        constant column.
    """

    segment_id: int
    name: str
    size: int
    share: float
    revenue_share: float
    means: dict[str, float]
    medians: dict[str, float]
    zscores: dict[str, float]


def profile_segments(
    X: pd.DataFrame,
    labels: npt.NDArray[np.integer],
    k: int | Sequence[int],
) -> list[SegmentProfile]:
    """Profiles of segments ``1..k`` (or of the segment ids listed in ``k``) given each row's
    segment id in ``labels``.

    The population statistics are those of the whole of ``X``; the names are unique. A segment
    without members has size 0 and means, medians and z-scores of 0.
    """
    ids = list(range(1, k + 1)) if isinstance(k, int) else [int(i) for i in k]
    population_mean = X.mean()
    population_std = X.std(ddof=0)
    grouped = X.groupby(labels, sort=True)
    means = grouped.mean().reindex(ids)
    medians = grouped.median().reindex(ids)
    counts = pd.Series(labels).value_counts()
    sizes = [int(counts.get(i, 0)) for i in ids]
    scale = population_std.where(population_std > 0)
    zscores = ((means - population_mean) / scale).fillna(0.0)

    total = len(X)
    spend = spend_column(X)
    if spend is not None:
        revenue = X[spend].groupby(labels).sum().reindex(ids, fill_value=0.0)
        total_revenue = float(X[spend].sum())
        revenue_shares = (revenue / total_revenue if total_revenue else revenue * 0.0).tolist()
    else:
        revenue_shares = [float("nan")] * len(ids)

    mean_rows, median_rows = _rows(means.fillna(0.0)), _rows(medians.fillna(0.0))
    z_rows = _rows(zscores)
    names = unique_names([describe(z_rows[i], ids[i]) for i in range(len(ids))])
    return [
        SegmentProfile(
            segment_id=ids[i],
            name=names[i],
            size=sizes[i],
            share=float(sizes[i] / total) if total else 0.0,
            revenue_share=float(revenue_shares[i]),
            means=mean_rows[i],
            medians=median_rows[i],
            zscores=z_rows[i],
        )
        for i in range(len(ids))
    ]


def spend_column(X: pd.DataFrame) -> str | None:
    """The first of :data:`SPEND_COLUMNS` that ``X`` has with a non-zero total (a customer
    table without a transaction log has ``monetary`` 0 throughout), or None."""
    for column in SPEND_COLUMNS:
        if column in X.columns and X[column].astype(np.float64).abs().sum() > 0:
            return column
    return None


def describe(zscores: Mapping[str, float], segment_id: int) -> str:
    """The automatic name of a segment from its z-scores (see the module docstring)."""
    rfm = ("monetary", "recency", "frequency")
    if all(zscores.get(column, 0.0) == 0.0 for column in rfm):
        # No RFM information (no transaction log: every z-score is exactly 0): name by traits.
        traits = {k: v for k, v in zscores.items() if k not in rfm}
        return _describe_traits(traits, segment_id)
    parts = []
    if "monetary" in zscores:
        z = zscores["monetary"]
        level = "High" if z >= HIGH_SPEND_Z else "Low" if z <= LOW_SPEND_Z else "Mid"
        parts.append(f"{level} spend")
    if "recency" in zscores:
        # Recency counts days since the last purchase: below average means recent.
        parts.append("recent" if zscores["recency"] < 0 else "lapsed")
    if "frequency" in zscores:
        parts.append("frequent" if zscores["frequency"] > 0 else "occasional")
    if not parts:
        return _describe_traits(zscores, segment_id)
    name = ", ".join(parts)
    return name[0].upper() + name[1:]


def _describe_traits(zscores: Mapping[str, float], segment_id: int) -> str:
    """Without RFM columns: the (at most) two columns farthest from the population mean, at
    least :data:`TRAIT_Z` away, as in ``"High Grocery, low Fresh"``."""
    strongest = sorted(
        ((name, z) for name, z in zscores.items() if abs(z) >= TRAIT_Z),
        key=lambda item: (-abs(item[1]), item[0]),
    )[:2]
    if not strongest:
        return "Typical" if zscores else f"Segment {segment_id}"
    name = ", ".join(f"{'high' if z > 0 else 'low'} {column}" for column, z in strongest)
    return name[0].upper() + name[1:]


def unique_names(names: Sequence[str]) -> list[str]:
    """``names`` (in segment id order) with repeats numbered: the second ``"X"`` is ``"X (2)"``."""
    seen: dict[str, int] = {}
    unique = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        unique.append(name if seen[name] == 1 else f"{name} ({seen[name]})")
    return unique


def profiles_with_names(
    profiles: Sequence[SegmentProfile], names: Mapping[int, str]
) -> list[SegmentProfile]:
    """``profiles`` with the business names in ``names`` (segment id to name) replacing the
    automatic ones; segments not in ``names`` keep theirs.

    Raises
    ------
    ValueError
        When ``names`` mentions a segment the model does not have, gives an empty name, or the
        result would contain the same name twice (campaigns select segments by name).
    """
    ids = [profile.segment_id for profile in profiles]
    unknown = sorted(set(names) - set(ids))
    if unknown:
        raise ValueError(
            f"names: no segment {unknown[0]}; this model has segments {min(ids)} to {max(ids)}"
        )
    for segment_id, name in names.items():
        if not name.strip():
            raise ValueError(f"names: the name of segment {segment_id} is empty")
    renamed = [replace(p, name=names.get(p.segment_id, p.name)) for p in profiles]
    owner: dict[str, int] = {}
    for profile in renamed:
        if profile.name in owner:
            raise ValueError(
                f"names: segments {owner[profile.name]} and {profile.segment_id} would both be "
                f"called {profile.name!r}; give each segment a different name"
            )
        owner[profile.name] = profile.segment_id
    return renamed


def _rows(frame: pd.DataFrame) -> list[dict[str, float]]:
    columns = [str(column) for column in frame.columns]
    return [
        dict(zip(columns, (float(v) for v in row), strict=True))
        for row in frame.to_numpy(dtype=np.float64)
    ]
