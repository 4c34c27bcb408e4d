"""Choosing whom to message by a model's score: top N, top share, or a budget.

The rule engine (campaigns/planner.py) owns audiences; this is the selection a campaign's
targeting option would apply to its audience.
"""

from __future__ import annotations

import math

import pandas as pd

from campaigns.personalization.errors import PersonalizationError


def select_targets(
    scores: pd.Series,
    value: pd.Series | float = 1.0,
    top: int | None = None,
    share: float | None = None,
    budget: float | None = None,
    cost: float = 0.0,
) -> pd.Index:
    """The customers worth messaging, best first, by expected value ``scores * value``.

    With propensity scores the expected value is the revenue a message may bring; with uplift
    scores it is the revenue the message *adds*, so customers who would buy anyway (uplift near
    zero) and those the message puts off (negative uplift) are skipped.

    :param scores: per customer id, a probability (propensity) or a change in it (uplift)
    :param value: what a conversion is worth, per customer (such as the average order value)
        or one number for everyone
    :param top: at most this many customers
    :param share: at most this share of ``scores``' customers
    :param budget: at most ``budget / cost`` messages
    :param cost: the cost of one message; only customers whose expected value exceeds it are
        chosen (with the default 0: any positive expected value)
    """
    if share is not None and not 0 < share <= 1:
        raise PersonalizationError(f"share must be in (0, 1], got {share}")
    if budget is not None and cost <= 0:
        raise PersonalizationError("a budget needs the cost of one message (cost > 0)")
    expected = scores * value
    ranked = expected[expected > cost].sort_values(ascending=False, kind="stable")
    count = len(ranked)
    if top is not None:
        count = min(count, top)
    if share is not None:
        count = min(count, math.floor(share * len(scores)))
    if budget is not None:
        count = min(count, math.floor(budget / cost))
    return ranked.index[:count]
