"""The rule engine's first pass: which campaigns are due, who is in each audience, who wins.

Everything here is a pure function of the customer table (one row per customer with its traits,
features and ``segment_id``), the config and the run time: ``campaign run --dry-run`` and the real
run compute the same plan.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Set
from dataclasses import dataclass, field
from datetime import datetime

import pandas as pd

from campaigns.config.schema import CampaignConfig, Config
from campaigns.errors import UnknownSegment
from campaigns.triggers import Window, last_fire

# Why a campaign does nothing in a run.
DUE = "due"
NOT_DUE = "not due yet"
ALREADY_PLANNED = "window already planned"
DISABLED = "disabled"

# Why a customer in an audience gets no message.
SUPPRESSED = "suppressed"
LOWER_PRIORITY = "lower priority"


@dataclass(frozen=True)
class CampaignPlan:
    """One campaign in one run.

    ``audience`` holds the customers its segments select (``customer_id``, ``segment_id``);
    ``selected`` those who get a message after suppression and arbitration; ``left_out`` counts
    the rest by reason.
    """

    name: str
    config: CampaignConfig
    status: str
    window: Window | None
    audience: pd.DataFrame
    selected: pd.DataFrame
    left_out: Mapping[str, int] = field(default_factory=dict)


def resolve_segments(
    name: str, wanted: list[str | int], segment_names: Mapping[int, str]
) -> list[int]:
    """Turn a campaign's segment list (names, ids or "*") into segment ids."""
    if "*" in wanted:
        return sorted(segment_names)
    by_name = {label.casefold(): sid for sid, label in segment_names.items()}
    ids = []
    for item in wanted:
        if isinstance(item, int) or (isinstance(item, str) and item.isdigit()):
            sid = int(item)
            if sid not in segment_names:
                raise UnknownSegment(_unknown(name, item, segment_names))
            ids.append(sid)
        elif item.casefold() in by_name:
            ids.append(by_name[item.casefold()])
        else:
            raise UnknownSegment(_unknown(name, item, segment_names))
    return ids


def _unknown(campaign: str, item: str | int, segment_names: Mapping[int, str]) -> str:
    known = "; ".join(f"{sid} = {label!r}" for sid, label in sorted(segment_names.items()))
    return f"campaigns.{campaign}.segments: no segment {item!r}; the current segments are: {known}"


def plan_campaigns(
    config: Config,
    customers: pd.DataFrame,
    segment_names: Mapping[int, str],
    at: datetime,
    planned_windows: Set[tuple[str, str]],
    suppressed: Set[str],
    only: str | None = None,
) -> list[CampaignPlan]:
    """Plan every campaign (or only ``only``) for a run at ``at``.

    Due campaigns are arbitrated together: a customer gets at most
    ``settings.max_messages_per_customer_per_run`` messages, highest ``priority`` first (ties by
    campaign name), and the others count the customer as left out for ``lower priority``.
    """
    empty = customers.iloc[0:0][["customer_id", "segment_id"]]
    plans: list[CampaignPlan] = []
    is_suppressed = customers["customer_id"].isin(list(suppressed))
    for name, campaign in config.campaigns.items():
        if only is not None and name != only:
            continue
        ids = resolve_segments(name, campaign.segments, segment_names)
        in_audience = customers["segment_id"].isin(ids)
        audience = customers.loc[in_audience, ["customer_id", "segment_id"]]
        window = last_fire(campaign.trigger, at)
        if not campaign.enabled:
            status = DISABLED
        elif window is None:
            status = NOT_DUE
        elif (name, window.key) in planned_windows:
            status = ALREADY_PLANNED
        else:
            status = DUE
        if status != DUE:
            plans.append(CampaignPlan(name, campaign, status, window, audience, empty))
            continue
        eligible = customers.loc[in_audience & ~is_suppressed, ["customer_id", "segment_id"]]
        left_out = Counter({SUPPRESSED: int((in_audience & is_suppressed).sum())})
        plans.append(CampaignPlan(name, campaign, status, window, audience, eligible, left_out))
    return _arbitrate(plans, config.settings.max_messages_per_customer_per_run)


def _arbitrate(plans: list[CampaignPlan], per_customer: int) -> list[CampaignPlan]:
    due = [p for p in plans if p.status == DUE]
    if len(due) < 2:
        return plans
    order = sorted(due, key=lambda p: (-p.config.priority, p.name))
    taken = pd.concat(
        [p.selected.assign(_rank=rank) for rank, p in enumerate(order)], ignore_index=True
    )
    # Within each customer, keep the first `per_customer` campaigns in priority order.
    taken["_nth"] = taken.sort_values("_rank", kind="stable").groupby("customer_id").cumcount()
    arbitrated = {}
    for rank, plan in enumerate(order):
        mine = taken[taken["_rank"] == rank]
        keep = mine["_nth"] < per_customer
        selected = plan.selected.loc[keep.to_numpy()]
        left_out = Counter(plan.left_out)
        left_out[LOWER_PRIORITY] = int((~keep).sum())
        arbitrated[plan.name] = CampaignPlan(
            plan.name, plan.config, plan.status, plan.window, plan.audience, selected, left_out
        )
    return [arbitrated.get(p.name, p) for p in plans]
