"""What a template sees: the render context, built the same way for preview, check and send."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import pandas as pd

#: The top-level names every template may use (documented in the README).
CONTEXT_NAMES: frozenset[str] = frozenset(
    {"customer", "segment", "campaign", "variant", "unsubscribe_url", "recommendations", "now"}
)


def plain(value: Any) -> Any:
    """Turn pandas/numpy scalars into plain Python; NaN and NaT become None."""
    if value is None or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        try:
            return plain(value.item())
        except (ValueError, AttributeError):
            return value
    return value


def build_context(
    customer: dict[str, Any],
    segment: Mapping[str, Any],
    campaign: Mapping[str, Any],
    now: datetime,
    unsubscribe_url: str,
    variant: Mapping[str, Any] | None = None,
    recommendations: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """The context for one message. ``customer`` holds traits and features (RFM) by name, as
    plain Python values (see :func:`plain` and :func:`campaigns.rendering.customer_records`)."""
    return {
        "customer": customer,
        "segment": dict(segment),
        "campaign": dict(campaign),
        "variant": dict(variant) if variant is not None else None,
        "unsubscribe_url": unsubscribe_url,
        "recommendations": list(recommendations),
        "now": now,
    }
