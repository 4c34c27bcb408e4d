"""The parts of ``campaign segment report`` beyond the model itself: who is not segmented, the
segments' make-up by the columns not clustered on, and their sizes over time."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import Engine

from campaigns.config.schema import SegmentationConfig
from campaigns.data_checks import stale_warning
from campaigns.planner import NOT_SEGMENTED
from segmentation.history import sizes_over_time
from segmentation.makeup import segment_makeup
from store.bulk import read_frame
from store.frames import ShopData

#: Customers listed by id in the report's "not segmented" part, at most.
NAMED = 20
#: Columns that identify or contact a customer: never a make-up.
PERSONAL = ("customer_id", "email", "first_name", "last_name", "signup_at", "segment_id")

NAMING = (
    "names come from the position of each segment's median customer among all customers: "
    "spend by the 33rd, 67th and 90th percentiles (low, mid, high, top), recency and "
    "frequency by the median"
)


def report_additions(
    engine: Engine,
    shop: ShopData,
    features: pd.DataFrame,
    segment_ids: pd.Series,
    clustered: tuple[str, ...],
    config: SegmentationConfig,
    at: datetime,
) -> dict[str, Any]:
    """The JSON-ready additions to a segment report (see the module docstring).

    :param segment_ids: every customer's segment id (:data:`NOT_SEGMENTED` for those left out)
    """
    left_out = segment_ids.index[segment_ids == NOT_SEGMENTED]
    customers = shop.customers.set_index("customer_id").rename_axis(None)
    table = customers.join(features.drop(columns=customers.columns, errors="ignore"))
    segmented = segment_ids[segment_ids != NOT_SEGMENTED]
    makeup, skipped = segment_makeup(
        table.loc[segmented.index], segmented, skip={*clustered, *PERSONAL}
    )
    events = read_frame(
        engine,
        "SELECT at, segment_id, kind, COUNT(*) AS customers FROM segment_event "
        "GROUP BY at, segment_id, kind",
        datetime_columns=["at"],
    )
    sizes = sizes_over_time(events)
    warning = stale_warning(shop.transactions, at)
    return {
        "at": at.isoformat(),
        "naming": NAMING,
        "warnings": [warning] if warning else [],
        "not_segmented": {
            "customers": len(left_out),
            "reason": "no usable purchase up to --at (every line quarantined, or none yet)",
            "customer_ids": [str(c) for c in left_out[:NAMED]],
        },
        "makeup": makeup,
        "makeup_skipped": skipped,
        "history": [
            {"at": when.isoformat(), "sizes": {str(s): int(n) for s, n in row.items()}}
            for when, row in zip(
                pd.DatetimeIndex(sizes.index), sizes.to_dict("records"), strict=True
            )
        ],
    }
