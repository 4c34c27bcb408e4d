"""The demo shop's events feed: abandoned carts in the last days of the history."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd

#: Share of active customers who abandoned a cart in the last three days.
ABANDON_SHARE = 0.04
_SECONDS = 3 * 86_400


def abandoned_carts(
    customer_ids: pd.Series, active: npt.NDArray[np.bool_], end: np.datetime64, seed: int
) -> pd.DataFrame:
    """``cart_abandoned`` events for a seeded sample of active customers, within three days
    before ``end``. Its own generator (from ``seed``) leaves the rest of the shop unchanged."""
    rng = np.random.default_rng([seed, 1])
    chosen = active & (rng.random(len(customer_ids)) < ABANDON_SHARE)
    offsets = rng.integers(0, _SECONDS, int(chosen.sum()))
    events = pd.DataFrame(
        {
            "customer_id": customer_ids.to_numpy()[chosen],
            "event": "cart_abandoned",
            "occurred_at": end - offsets.astype("timedelta64[s]"),
        }
    )
    events["occurred_at"] = events["occurred_at"].astype("datetime64[ns]")
    return events.sort_values("occurred_at", kind="stable").reset_index(drop=True)
