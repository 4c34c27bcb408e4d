"""What each segment looks like: sizes, shares, typical values, and a descriptive name.

A name is read off each segment's *position* in the whole distribution: for a column, the
percentile rank among all customers of the segment's median (the share of customers below it,
ties counted half), from 0 to 1. For three RFM columns:

- spend, from ``monetary``, by terciles and the top decile: ``Top spend`` when the segment's
  median customer spends at least as much as 90 % of all customers (position at least 0.9, the
  90th percentile), ``High spend`` from the 67th percentile (2/3), ``Mid spend`` from the 33rd
  (1/3), and ``Low spend`` below it;
- ``recency`` (days since the last purchase), by the median: ``recent`` when the segment's
  median lies below the population's (position under 0.5), else ``lapsed``;
- ``frequency``, by the median: ``frequent`` above it, else ``occasional``;

giving e.g. ``"High spend, recent, frequent"``. Positions do not depend on how skewed a column
is: a segment whose median customer spends less than two thirds of all customers is never
called high spend because a few very large customers stretch the scale (a z-score cut-off let a
segment with a mean of £280, the lowest of three, be "Mid spend"). Recency is relative to the
customers: a log that ended long before ``--at`` makes everyone lapsed in absolute terms, and
``campaign data profile`` warns about that.

A constant column has no position and drops its term. Without the three (customer tables such as
the Wholesale layout) the name lists the two columns whose medians lie farthest from the middle,
outside the middle third (below the 33rd or above the 67th percentile), such as ``"High
Grocery, high Detergents_Paper"``, or ``"Typical"`` when none does.

Two segments can get the same name; the one with the smaller id (the higher spending one) keeps
it and the others get ``" (2)"``, ``" (3)"``, … appended, so names are unique within a model.
Business names from the configuration replace the automatic ones with :func:`profiles_with_names`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt
import pandas as pd

#: Position of the median spend from which a segment is "Top spend" (the 90th percentile).
TOP_SPEND = 0.9
#: Position of the median spend from which a segment is "High spend" (the 67th percentile).
HIGH_SPEND = 2 / 3
#: Position of the median spend below which a segment is "Low spend" (the 33rd percentile).
LOW_SPEND = 1 / 3
#: Recency and frequency are split at the population median.
MIDDLE = 0.5
#: Without RFM columns, a column appears in a name when its position is outside the middle
#: third: at most 1/3 or at least 2/3.
TRAIT_DISTANCE = 1 / 6
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
    positions:
        Per non-constant column: the percentile rank (0 to 1) of the segment's median among all
        customers, ties counted half; the name is read from these.
    """

    segment_id: int
    name: str
    size: int
    share: float
    revenue_share: float
    means: dict[str, float]
    medians: dict[str, float]
    zscores: dict[str, float]
    positions: dict[str, float] = field(default_factory=dict)


def positions_of(X: pd.DataFrame, medians: pd.DataFrame) -> list[dict[str, float]]:
    """Per row of ``medians`` (one per segment), the position of each value among the values of
    the same column of ``X``: (customers below + customers equal / 2) / customers. Constant and
    empty columns are left out."""
    rows: list[dict[str, float]] = [{} for _ in range(len(medians))]
    for column in medians.columns:
        values = X[column].to_numpy(dtype=np.float64)
        values = np.sort(values[~np.isnan(values)])
        if len(values) == 0 or values[0] == values[-1]:
            continue
        wanted = medians[column].to_numpy(dtype=np.float64)
        below = np.searchsorted(values, wanted, side="left")
        upto = np.searchsorted(values, wanted, side="right")
        for i, (lo, hi, value) in enumerate(zip(below, upto, wanted, strict=True)):
            if not np.isnan(value):
                rows[i][str(column)] = float((lo + hi) / 2 / len(values))
    return rows


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
    present = medians.where(pd.Series(sizes, index=ids) > 0, axis=0)
    position_rows = positions_of(X, present)
    names = unique_names([describe(position_rows[i], ids[i]) for i in range(len(ids))])
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
            positions=position_rows[i],
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


def describe(positions: Mapping[str, float], segment_id: int) -> str:
    """The automatic name of a segment from its positions (see the module docstring)."""
    rfm = ("monetary", "recency", "frequency")
    parts = []
    if "monetary" in positions:
        p = positions["monetary"]
        level = (
            "Top"
            if p >= TOP_SPEND
            else "High"
            if p >= HIGH_SPEND
            else "Mid"
            if p >= LOW_SPEND
            else "Low"
        )
        parts.append(f"{level} spend")
    if "recency" in positions:
        # Recency counts days since the last purchase: below the median means recent.
        parts.append("recent" if positions["recency"] < MIDDLE else "lapsed")
    if "frequency" in positions:
        parts.append("frequent" if positions["frequency"] > MIDDLE else "occasional")
    if not parts:
        traits = {k: v for k, v in positions.items() if k not in rfm}
        return _describe_traits(traits, segment_id)
    name = ", ".join(parts)
    return name[0].upper() + name[1:]


def _describe_traits(positions: Mapping[str, float], segment_id: int) -> str:
    """Without RFM columns: the (at most) two columns whose positions lie farthest from the
    middle, outside the middle third, as in ``"High Grocery, low Fresh"``."""
    strongest = sorted(
        ((name, p) for name, p in positions.items() if abs(p - MIDDLE) >= TRAIT_DISTANCE - 1e-12),
        key=lambda item: (-abs(item[1] - MIDDLE), item[0]),
    )[:2]
    if not strongest:
        return "Typical" if positions else f"Segment {segment_id}"
    name = ", ".join(f"{'high' if p > MIDDLE else 'low'} {column}" for column, p in strongest)
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
