"""Checks of the data against the time a command looks at it."""

from __future__ import annotations

from datetime import datetime

import pandas as pd

#: ``--at`` more than this many days after the last transaction draws a warning.
STALE_AFTER_DAYS = 90


def stale_warning(transactions: pd.DataFrame, at: datetime) -> str | None:
    """A warning when ``at`` lies far beyond the log's last line: recency then counts mostly the
    time since the data ended, and relative names ("recent") describe a past that is over."""
    if transactions.empty:
        return None
    last = pd.to_datetime(transactions["invoiced_at"]).max()
    gap = (pd.Timestamp(at) - last).total_seconds() / 86_400
    if gap <= STALE_AFTER_DAYS:
        return None
    after = (last.normalize() + pd.Timedelta(days=1)).date().isoformat()
    return (
        f"--at {pd.Timestamp(at):%Y-%m-%d} is {gap:,.0f} days after the last transaction "
        f"({last:%Y-%m-%d}): every recency includes those days, so 'recent' and 'lapsed' compare "
        f"customers as of a time the data does not cover; use --at {after} to see them as of "
        "the end of the data"
    )
