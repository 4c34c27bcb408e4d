"""The rule engine: which campaigns fire, for whom, and who wins when several want one customer.

Everything here is a pure function of :class:`PlanInputs` (the customer table and what the store
remembers) and the config: ``campaign run --dry-run``, ``campaign plan`` and the real run compute
the same plan. Conditions, audiences, caps and arbitration are vectorised over the whole table.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Mapping, Set
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from campaigns.config.rules import (
    Cap,
    EventTrigger,
    InactiveTrigger,
    OnceTrigger,
    ScheduleTrigger,
    SegmentTrigger,
    parse_duration,
)
from campaigns.config.schema import CampaignConfig, Config
from campaigns.errors import UnknownSegment
from campaigns.keys import idempotency_key
from campaigns.triggers import last_fire

# Why a campaign does nothing in a run.
DUE = "due"
NOT_DUE = "not due yet"
ALREADY_PLANNED = "window already planned"
DISABLED = "disabled"
NO_TRIGGER = "nobody triggered it"

# Why a customer in an audience gets no message.
ALREADY_SENT = "already sent for this occasion"
SUPPRESSED = "suppressed"
LOWER_PRIORITY = "lower priority"
CAMPAIGN_CAP = "campaign cap"
GLOBAL_CAP = "frequency cap"

#: Columns of :attr:`CampaignPlan.selected`.
SELECTED_COLUMNS = ["customer_id", "segment_id", "window"]


@dataclass(frozen=True)
class PlanInputs:
    """What the planner needs besides the config.

    :param customers: one row per customer: traits, features, ``segment_id`` and ``segment``
    :param at: the run's time (naive UTC)
    :param planned_windows: (campaign, window) pairs already planned by earlier runs
    :param suppressed: customer ids never to contact
    :param previous_segments: each customer's segment before this run (empty on a first run)
    :param events: the events feed: ``customer_id``, ``event``, ``occurred_at``
    :param history: messages already planned: ``customer_id``, ``campaign``, ``created_at``
    :param already_sent: given a campaign and trigger windows, the idempotency keys the outbox
        already holds for them (per-customer triggers fire once per occasion)
    """

    customers: pd.DataFrame
    at: datetime
    planned_windows: Set[tuple[str, str]] = frozenset()
    suppressed: Set[str] = frozenset()
    previous_segments: pd.Series = field(default_factory=lambda: pd.Series(dtype="int64"))
    events: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=["customer_id", "event", "occurred_at"])
    )
    history: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=["customer_id", "campaign", "created_at"])
    )
    already_sent: Callable[[str, Collection[str]], set[str]] = lambda _campaign, _windows: set()


@dataclass(frozen=True)
class CampaignPlan:
    """One campaign in one run.

    ``audience`` holds the customers its segments, condition and trigger select (``customer_id``,
    ``segment_id``, ``window``); ``selected`` those who get a message after suppression, caps and
    arbitration; ``left_out`` counts the rest by reason. ``window`` is the trigger window: for a
    schedule the fire time, for per-customer triggers the customer's own occasion.
    """

    name: str
    config: CampaignConfig
    status: str
    window: str | None
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
    inputs: PlanInputs,
    segment_names: Mapping[int, str],
    only: str | None = None,
) -> list[CampaignPlan]:
    """Plan every campaign (or only ``only``) for a run at ``inputs.at``.

    Due campaigns are arbitrated together in priority order (ties by name): each takes the
    customers that are not suppressed, still under every frequency cap (the campaign's own and the
    global ones, counting earlier messages and those taken by higher-priority campaigns in this
    run), and under ``settings.max_messages_per_customer_per_run``.
    """
    customers = inputs.customers.reset_index(drop=True)
    plans: list[CampaignPlan] = []
    for name, campaign in config.campaigns.items():
        if only is not None and name != only:
            continue
        ids = resolve_segments(name, campaign.segments, segment_names)
        plans.append(_audience(name, campaign, ids, customers, inputs))
    return _arbitrate(plans, config, inputs)


def _audience(
    name: str,
    campaign: CampaignConfig,
    segment_ids: list[int],
    customers: pd.DataFrame,
    inputs: PlanInputs,
) -> CampaignPlan:
    """Who a campaign's trigger, segments and condition select, and whether it is due."""
    trigger = campaign.trigger
    mask = np.array(customers["segment_id"].isin(segment_ids), dtype=bool)
    window: str | None = None
    windows: pd.Series
    if isinstance(trigger, (ScheduleTrigger, OnceTrigger)):
        fired = last_fire(trigger, inputs.at)
        window = fired.key if fired is not None else None
        windows = pd.Series(window, index=customers.index, dtype=object)
        if not campaign.enabled:
            status = DISABLED
        elif fired is None:
            status = NOT_DUE
        elif (name, fired.key) in inputs.planned_windows:
            status = ALREADY_PLANNED
        else:
            status = DUE
    else:
        windows = _occasions(trigger, segment_ids, customers, inputs)
        if isinstance(trigger, SegmentTrigger) and trigger.type == "segment_exited":
            # They have left the campaign's segments: select by where they came from.
            mask = np.ones(len(customers), dtype=bool)
        mask &= windows.notna().to_numpy()
        status = DUE if campaign.enabled else DISABLED
    condition = campaign.condition()
    if condition is not None:
        mask &= condition.evaluate(customers, inputs.at).to_numpy()
    audience = customers.loc[mask, ["customer_id", "segment_id"]].assign(window=windows[mask])
    left_out: dict[str, int] = {}
    if not audience.empty and window is None:
        # A per-customer occasion (an entry, an inactive spell, an event) is messaged once.
        keys = [
            idempotency_key(name, str(c), str(w))
            for c, w in zip(audience["customer_id"], audience["window"], strict=True)
        ]
        sent = inputs.already_sent(name, audience["window"].unique().tolist())
        fresh = np.array([k not in sent for k in keys], dtype=bool)
        if not fresh.all():
            left_out[ALREADY_SENT] = int((~fresh).sum())
            audience = audience.loc[fresh]
    per_customer = not isinstance(trigger, ScheduleTrigger | OnceTrigger)
    if status == DUE and audience.empty and per_customer:
        status = NO_TRIGGER
    selected = audience if status == DUE else audience.iloc[0:0]
    return CampaignPlan(name, campaign, status, window, audience, selected, left_out)


def _occasions(
    trigger: SegmentTrigger | InactiveTrigger | EventTrigger,
    segment_ids: list[int],
    customers: pd.DataFrame,
    inputs: PlanInputs,
) -> pd.Series:
    """Per customer, the occasion a per-customer trigger fires for (its window), or NA."""
    index = customers.index
    none = pd.Series(pd.NA, index=index, dtype=object)
    stamp = f"{inputs.at:%Y-%m-%dT%H:%MZ}"
    if isinstance(trigger, SegmentTrigger):
        if inputs.previous_segments.empty:
            return none  # the first assignment is a baseline, not an entry
        before = inputs.previous_segments.reindex(customers["customer_id"]).to_numpy()
        after = customers["segment_id"].to_numpy()
        known = ~pd.isna(before)
        changed = known & (before != after)
        if trigger.type == "segment_entered":
            hit = changed & np.isin(after, segment_ids)
            tag = "entered"
        else:
            hit = changed & np.isin(before, segment_ids)
            tag = "exited"
        return none.where(~hit, f"{tag}@{stamp}")
    if isinstance(trigger, InactiveTrigger):
        # One message per inactive spell: the key is the day of the last purchase.
        recency = customers["recency"].to_numpy(dtype=float)
        last = pd.Series(
            pd.Timestamp(inputs.at) - pd.to_timedelta(recency, unit="D"), index=index
        ).dt.strftime("%Y-%m-%d")
        hit = recency >= trigger.days
        return none.where(~hit, "inactive-since-" + last)
    events = inputs.events
    since = pd.Timestamp(inputs.at) - parse_duration(trigger.within)
    recent = events[
        (events["event"] == trigger.event)
        & (events["occurred_at"] > since)
        & (events["occurred_at"] <= pd.Timestamp(inputs.at))
    ]
    latest = recent.groupby("customer_id")["occurred_at"].max()
    occasion = latest.reindex(customers["customer_id"]).to_numpy()
    keys = pd.Series(occasion, index=index)
    return none.where(keys.isna(), f"{trigger.event}@" + keys.dt.strftime("%Y-%m-%dT%H:%M:%S"))


def _cap_counts(history: pd.DataFrame, cap: Cap, at: datetime, campaign: str | None) -> pd.Series:
    """Messages per customer inside the cap's period (only ``campaign``'s, when given)."""
    start = pd.Timestamp(at) - cap.period
    recent = history[(history["created_at"] > start) & (history["created_at"] <= pd.Timestamp(at))]
    if campaign is not None:
        recent = recent[recent["campaign"] == campaign]
    return recent.groupby("customer_id").size()


def _arbitrate(plans: list[CampaignPlan], config: Config, inputs: PlanInputs) -> list[CampaignPlan]:
    settings = config.settings
    due = sorted((p for p in plans if p.status == DUE), key=lambda p: (-p.config.priority, p.name))
    customer_ids = inputs.customers["customer_id"].to_numpy()
    position = pd.Series(np.arange(len(customer_ids)), index=customer_ids)
    taken_this_run = np.zeros(len(customer_ids), dtype=np.int64)
    suppressed = np.isin(customer_ids, list(inputs.suppressed))
    # Global caps count every campaign's messages: earlier ones, then this run's as they are taken.
    global_used = [
        _cap_counts(inputs.history, cap, inputs.at, None)
        .reindex(customer_ids, fill_value=0)
        .to_numpy(dtype=np.int64, copy=True)
        for cap in settings.caps
    ]
    arbitrated: dict[str, CampaignPlan] = {}
    for plan in due:
        rows = position.reindex(plan.audience["customer_id"]).to_numpy()
        left_out: Counter[str] = Counter(plan.left_out)
        keep = ~suppressed[rows]
        left_out[SUPPRESSED] = int((~keep).sum())
        for cap in plan.config.caps:
            mine = _cap_counts(inputs.history, cap, inputs.at, plan.name)
            under = (
                mine.reindex(plan.audience["customer_id"], fill_value=0).to_numpy() < cap.messages
            )
            left_out[CAMPAIGN_CAP] += int((keep & ~under).sum())
            keep &= under
        for cap, counts in zip(settings.caps, global_used, strict=True):
            under = counts[rows] < cap.messages
            left_out[GLOBAL_CAP] += int((keep & ~under).sum())
            keep &= under
        under = taken_this_run[rows] < settings.max_messages_per_customer_per_run
        left_out[LOWER_PRIORITY] += int((keep & ~under).sum())
        keep &= under
        taken = rows[keep]
        taken_this_run[taken] += 1
        for counts in global_used:
            counts[taken] += 1
        arbitrated[plan.name] = CampaignPlan(
            plan.name,
            plan.config,
            plan.status,
            plan.window,
            plan.audience,
            plan.audience.loc[keep],
            {reason: n for reason, n in left_out.items() if n},
        )
    return [arbitrated.get(p.name, p) for p in plans]


def deferred_until(timezones: pd.Series, at: datetime, start: time, end: time) -> pd.Series:
    """For customers in quiet hours at ``at`` (their local time), when the quiet hours end (naive
    UTC); NaT for everyone else. Computed once per distinct timezone."""
    result = pd.Series(pd.NaT, index=timezones.index, dtype="datetime64[ns]")
    utc_at = pd.Timestamp(at, tz="UTC")
    for name in timezones.dropna().unique():
        local = utc_at.tz_convert(ZoneInfo(str(name)))
        now = local.time()
        quiet = (start <= now < end) if start < end else (now >= start or now < end)
        if not quiet:
            continue
        # Wall-clock end of the quiet hours today, or tomorrow if that has passed.
        until = local.replace(
            hour=end.hour, minute=end.minute, second=0, microsecond=0, nanosecond=0
        )
        if until <= local:
            until = (until.tz_localize(None) + timedelta(days=1)).tz_localize(local.tz)
        result[timezones == name] = until.tz_convert("UTC").tz_localize(None)
    return result
