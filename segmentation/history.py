"""Segment sizes over time, from the stored membership events.

Every run (and ``campaign segment assign``) records an ``entered`` event per customer who joined
a segment and an ``exited`` event per customer who left one; summed in time order they give
each segment's size after each run.
"""

from __future__ import annotations

import pandas as pd


def sizes_over_time(events: pd.DataFrame) -> pd.DataFrame:
    """Segment sizes after each moment that has events.

    :param events: ``at``, ``segment_id``, ``kind`` (``entered`` or ``exited``) and ``customers``
        (how many such events), one row per combination
    :return: one row per distinct ``at`` (ascending), one column per segment id (ascending)
    """
    if events.empty:
        return pd.DataFrame(dtype="int64")
    signed = events["customers"].where(events["kind"] == "entered", -events["customers"])
    change = (
        pd.DataFrame({"at": events["at"], "segment_id": events["segment_id"], "n": signed})
        .pivot_table(index="at", columns="segment_id", values="n", aggfunc="sum", fill_value=0)
        .sort_index()
    )
    sizes = change.cumsum().astype("int64")
    sizes.columns = [int(c) for c in sizes.columns]
    return sizes.reindex(columns=sorted(sizes.columns))
