"""The rule engine: which campaigns fire, for whom, and who wins when several want one customer.

Everything here is a pure function of :class:`PlanInputs` (the customer table and what the store
remembers) and the config: ``campaign run --dry-run``, ``campaign plan`` and the real run compute
the same plan. Conditions, audiences, caps and arbitration are vectorised over the whole table.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Set
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
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
from campaigns.config.schema import TRANSACTIONAL, CampaignConfig, Config, TargetConfig
from campaigns.errors import ConfigError, UnknownSegment
from campaigns.keys import idempotency_key
from campaigns.personalization.targeting import select_targets
from campaigns.triggers import Window, last_fire

# Why a campaign does nothing in a run.
DUE = "due"
NOT_DUE = "not due yet"
ALREADY_PLANNED = "window already planned"
DISABLED = "disabled"
NO_TRIGGER = "nobody triggered it"

# Why a customer in an audience gets no message.
ALREADY_SENT = "already in the outbox for this occasion"
NOT_TARGETED = "below the targeting cut"
SUPPRESSED = "suppressed"
LOWER_PRIORITY = "lower priority"
CAMPAIGN_CAP = "campaign cap"
GLOBAL_CAP = "frequency cap"
UNSEGMENTED = "not segmented"
CONDITION_ERROR = "condition error"

#: The segment id of customers the model does not segment (they have no usable purchase): a
#: campaign for every segment ("*") reaches them, one that names segments leaves them out.
NOT_SEGMENTED = 0
#: What reports call them.
NOT_SEGMENTED_NAME = "Not segmented"

#: Columns of :attr:`CampaignPlan.audience` and ``selected`` (``position``: the customer's row
#: in the planned customer table).
SELECTED_COLUMNS = ["customer_id", "segment_id", "window", "position"]

#: Columns of :attr:`CampaignPlan.left_out_rows`: who was left out, and the reason.
LEFT_OUT_COLUMNS = ["position", "segment_id", "reason"]


#: Every reason a matched customer is left out, in the order the planner applies them.
LEFT_OUT_REASONS = (
    CONDITION_ERROR,
    UNSEGMENTED,
    NOT_TARGETED,
    ALREADY_SENT,
    SUPPRESSED,
    CAMPAIGN_CAP,
    GLOBAL_CAP,
    LOWER_PRIORITY,
)


def _left_frame(
    positions: npt.NDArray[np.int64], segments: npt.NDArray[np.int64], codes: npt.NDArray[np.int8]
) -> pd.DataFrame:
    """:data:`LEFT_OUT_COLUMNS` from arrays; reasons as codes into :data:`LEFT_OUT_REASONS`
    (no string is made per customer)."""
    return pd.DataFrame(
        {
            "position": positions,
            "segment_id": segments,
            "reason": pd.Categorical.from_codes(codes, categories=pd.Index(LEFT_OUT_REASONS)),
        }
    )


def _no_rows() -> pd.DataFrame:
    return _left_frame(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int8))


def _code(reason: str) -> int:
    return LEFT_OUT_REASONS.index(reason)


@dataclass(frozen=True)
class PlanInputs:
    """What the planner needs besides the config.

    :param customers: one row per customer: traits, features, ``segment_id`` and ``segment``
    :param at: the run's time (naive UTC)
    :param planned_windows: (campaign, window) pairs already planned by earlier runs
    :param suppressed: customer ids never to contact
    :param topic_suppressed: subscription topic (``*``: every topic but transactional) to the
        customer ids unsubscribed from it
    :param previous_segments: each customer's segment before this run (empty on a first run)
    :param events: the events feed: ``customer_id``, ``event``, ``occurred_at``
    :param history: messages already planned: ``customer_id``, ``campaign``, ``created_at``
    :param already_sent: given a campaign and trigger windows, the idempotency keys the outbox
        already holds for them (per-customer triggers fire once per occasion)
    :param schedule_windows: each schedule (and once) campaign's window at ``at``, when the caller
        has computed them already (a forecast knows every fire time of its horizon); None: the
        planner computes them
    :param times: each customer's own run time (naive UTC, one per row of ``customers``), for a
        forecast that plans customers of several simulated runs in one call: caps, event windows
        and inactive spells are then measured from each row's time. Schedule statuses, conditions
        and segment occasions still use ``at``. None: every row at ``at``
    """

    customers: pd.DataFrame
    at: datetime
    planned_windows: Set[tuple[str, str]] = frozenset()
    suppressed: Set[str] = frozenset()
    topic_suppressed: Mapping[str, Set[str]] = field(default_factory=dict)
    previous_segments: pd.Series = field(default_factory=lambda: pd.Series(dtype="int64"))
    events: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=["customer_id", "event", "occurred_at"])
    )
    history: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=["customer_id", "campaign", "created_at"])
    )
    already_sent: Callable[[str, Collection[str]], Set[str]] = lambda _campaign, _windows: set()
    schedule_windows: Mapping[str, Window | None] | None = None
    times: npt.NDArray[np.datetime64] | None = None


@dataclass(frozen=True)
class CampaignPlan:
    """One campaign in one run.

    ``audience`` holds the customers its segments, condition and trigger select (``customer_id``,
    ``segment_id``, ``window``) who may still get its message; ``selected`` those who get a
    message after suppression, caps and arbitration; ``left_out`` counts everyone the campaign
    matched but will not message, by reason, and ``left_out_rows`` names them (``position`` in the
    customer table, ``segment_id``, ``reason``): those left out before the audience (below the
    targeting cut, already in the outbox for this occasion) and those left out of it. ``window`` is
    the trigger window: for a schedule the fire time, for per-customer triggers the customer's
    own occasion.
    """

    name: str
    config: CampaignConfig
    status: str
    window: str | None
    audience: pd.DataFrame
    selected: pd.DataFrame
    left_out: Mapping[str, int] = field(default_factory=dict)
    left_out_rows: pd.DataFrame = field(default_factory=_no_rows)
    #: What the ``where`` condition could not evaluate, for the customers left out with
    #: :data:`CONDITION_ERROR` ("column 1: lower() needs text, got a number (3 customers)").
    condition_problems: tuple[str, ...] = ()


def resolve_segments(
    name: str, wanted: list[str | int], segment_names: Mapping[int, str]
) -> list[int]:
    """Turn a campaign's segment list (names, ids or "*") into segment ids ("*" includes
    :data:`NOT_SEGMENTED`)."""
    if "*" in wanted:
        return sorted({*segment_names, NOT_SEGMENTED})
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


@dataclass(frozen=True)
class _Table:
    """The customer table as plain arrays, built once per plan: positions replace id lookups."""

    frame: pd.DataFrame
    ids: npt.NDArray[np.object_]
    index: pd.Index
    segments: npt.NDArray[np.int64]
    #: The history's customers as positions in the table (-1: not a current customer).
    history_rows: npt.NDArray[np.int64]
    history_times: npt.NDArray[np.datetime64]
    history_campaigns: npt.NDArray[np.object_]
    #: Each row's run time, when rows belong to different simulated runs (else None: ``at``).
    times: npt.NDArray[np.datetime64] | None = None

    @classmethod
    def build(cls, inputs: PlanInputs) -> _Table:
        frame = inputs.customers.reset_index(drop=True)
        ids = frame["customer_id"].astype(str).to_numpy(dtype=object)
        index = pd.Index(ids, dtype=object)
        history = inputs.history
        return cls(
            frame=frame,
            ids=ids,
            index=index,
            segments=frame["segment_id"].to_numpy(dtype=np.int64),
            history_rows=index.get_indexer(
                history["customer_id"].astype(str).to_numpy(dtype=object)
            ).astype(np.int64),
            history_times=pd.to_datetime(history["created_at"]).to_numpy(dtype="datetime64[ns]"),
            history_campaigns=history["campaign"].astype(str).to_numpy(dtype=object),
            times=None if inputs.times is None else inputs.times.astype("datetime64[ns]"),
        )

    def row_times(self, at: datetime, rows: npt.NDArray[np.int64]) -> npt.NDArray[np.datetime64]:
        """The run time of the customers at ``rows`` (``at`` for all, or each row's own)."""
        if self.times is None:
            return np.full(len(rows), np.datetime64(pd.Timestamp(at).as_unit("ns")))
        return self.times[rows]

    def cap_counts(self, cap: Cap, at: datetime, campaign: str | None) -> npt.NDArray[np.int64]:
        """Messages per customer (by position) inside the cap's period; only ``campaign``'s
        when given."""
        period = np.timedelta64(int(cap.period.total_seconds()), "s")
        if self.times is None:
            end = np.datetime64(pd.Timestamp(at).as_unit("ns"))
            chosen = (self.history_times > end - period) & (self.history_times <= end)
            chosen &= self.history_rows >= 0
        else:
            known = self.history_rows >= 0
            ends = self.times[np.where(known, self.history_rows, 0)]
            chosen = known & (self.history_times > ends - period) & (self.history_times <= ends)
        if campaign is not None:
            chosen &= self.history_campaigns == campaign
        return np.bincount(self.history_rows[chosen], minlength=len(self.ids)).astype(np.int64)


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
    table = _Table.build(inputs)
    occasions: dict[object, tuple[npt.NDArray[np.bool_], npt.NDArray[np.object_]]] = {}
    plans: list[CampaignPlan] = []
    for name, campaign in config.campaigns.items():
        if only is not None and name != only:
            continue
        ids = resolve_segments(name, campaign.segments, segment_names)
        plans.append(_audience(name, campaign, ids, table, inputs, occasions))
    return _arbitrate(plans, config, inputs, table)


def _audience(
    name: str,
    campaign: CampaignConfig,
    segment_ids: list[int],
    table: _Table,
    inputs: PlanInputs,
    memo: dict[object, tuple[npt.NDArray[np.bool_], npt.NDArray[np.object_]]],
) -> CampaignPlan:
    """Who a campaign's trigger, segments and condition select, and whether it is due.

    ``memo`` shares occasions between campaigns with the same per-customer trigger.
    """
    trigger = campaign.trigger
    # Customers without a segment are followed through the trigger and condition so that a
    # campaign naming segments can say how many it leaves out for that reason.
    count_unsegmented = NOT_SEGMENTED not in segment_ids
    mask = np.isin(table.segments, [*segment_ids, NOT_SEGMENTED])
    window: str | None = None
    occasions: npt.NDArray[np.object_] | None = None
    if isinstance(trigger, (ScheduleTrigger, OnceTrigger)):
        known = inputs.schedule_windows
        fired = (
            known[name] if known is not None and name in known else last_fire(trigger, inputs.at)
        )
        window = fired.key if fired is not None else None
        if not campaign.enabled:
            status = DISABLED
        elif fired is None:
            status = NOT_DUE
        elif (name, fired.key) in inputs.planned_windows:
            status = ALREADY_PLANNED
        else:
            status = DUE
    else:
        # Segment triggers depend on the campaign's segments; the others only on the trigger.
        key = (trigger, tuple(segment_ids)) if isinstance(trigger, SegmentTrigger) else trigger
        if key not in memo:
            memo[key] = _occasions(trigger, segment_ids, table, inputs)
        hit, occasions = memo[key]
        if isinstance(trigger, SegmentTrigger) and trigger.type == "segment_exited":
            # They have left the campaign's segments: select by where they came from.
            mask = np.ones(len(table.ids), dtype=bool)
            count_unsegmented = False
        mask &= hit
        status = DUE if campaign.enabled else DISABLED
    condition = campaign.condition()
    condition_errors = np.zeros(0, np.int64)
    problems: tuple[str, ...] = ()
    if condition is not None and mask.any():
        # A customer the condition cannot be evaluated for (one odd value) is left out with
        # the reason; the others are planned as usual.
        evaluated = condition.evaluate_rows(table.frame, inputs.at)
        condition_errors = np.flatnonzero(mask & evaluated.errors)
        problems = evaluated.problems if len(condition_errors) else ()
        mask &= evaluated.matches.to_numpy(dtype=bool)
    unsegmented = np.zeros(0, np.int64)
    if count_unsegmented:
        outside = mask & (table.segments == NOT_SEGMENTED)
        unsegmented = np.flatnonzero(outside)
        mask &= ~outside
    untargeted = np.zeros(0, np.int64)
    if campaign.target is not None and mask.any():
        before = mask
        mask = _targeted(name, campaign.target, table, mask)
        untargeted = np.flatnonzero(before & ~mask)
    rows = np.flatnonzero(mask)
    # Object columns: pandas would otherwise copy every id into a new string array.
    audience = pd.DataFrame(
        {
            "customer_id": pd.Series(table.ids[rows], dtype=object),
            "segment_id": table.segments[rows],
            # One window for everyone (a schedule): a one-category column, not a million strings.
            "window": (
                pd.Series(occasions[rows], dtype=object)
                if occasions is not None
                else pd.Categorical.from_codes(
                    np.zeros(len(rows), np.int8), pd.Index([str(window)])
                )
            ),
            "position": rows,
        }
    )
    left: list[tuple[npt.NDArray[np.int64], str]] = [
        (condition_errors, CONDITION_ERROR),
        (unsegmented, UNSEGMENTED),
        (untargeted, NOT_TARGETED),
    ]
    if len(audience) and (occasions is not None or status == DUE):
        # A per-customer occasion (an entry, an inactive spell, an event) is messaged once; so is
        # a schedule's window, which a run killed before it recorded the window may have begun.
        sent = inputs.already_sent(name, audience["window"].unique().tolist())
        if sent:
            keys = [
                idempotency_key(name, c, w)
                for c, w in zip(audience["customer_id"], audience["window"], strict=True)
            ]
            fresh = np.array([k not in sent for k in keys], dtype=bool)
            if not fresh.all():
                left.append((rows[~fresh], ALREADY_SENT))
                audience = audience.loc[fresh].reset_index(drop=True)
    if status == DUE and audience.empty and occasions is not None:
        status = NO_TRIGGER
    selected = audience if status == DUE else audience.iloc[0:0]
    left_rows = _left_rows(left, table)
    return CampaignPlan(
        name, campaign, status, window, audience, selected, _counts(left_rows), left_rows, problems
    )


def _left_rows(left: list[tuple[npt.NDArray[np.int64], str]], table: _Table) -> pd.DataFrame:
    """Customers left out, as :data:`LEFT_OUT_COLUMNS`, from (positions, reason) pairs."""
    positions = np.concatenate([p for p, _ in left]).astype(np.int64)
    codes = np.concatenate([np.full(len(p), _code(r), np.int8) for p, r in left])
    return _left_frame(positions, table.segments[positions], codes)


def _counts(rows: pd.DataFrame) -> dict[str, int]:
    found = np.bincount(rows["reason"].cat.codes.to_numpy(), minlength=len(LEFT_OUT_REASONS))
    return {reason: int(n) for reason, n in zip(LEFT_OUT_REASONS, found, strict=True) if n}


def _targeted(
    name: str, target: TargetConfig, table: _Table, mask: npt.NDArray[np.bool_]
) -> npt.NDArray[np.bool_]:
    """The audience narrowed to the customers worth messaging by expected value."""
    frame = table.frame
    for key, column in (("by", target.by), ("value", target.value)):
        if isinstance(column, str) and column not in frame.columns:
            raise ConfigError(
                f"campaigns.{name}.target.{key}: unknown column {column!r} (scores such as "
                "propensity exist once a model is trained: campaign model train)"
            )
    rows = np.flatnonzero(mask)
    scores = pd.Series(frame[target.by].to_numpy(dtype=float)[rows], index=rows)
    value: pd.Series | float = (
        pd.Series(frame[target.value].to_numpy(dtype=float)[rows], index=rows)
        if isinstance(target.value, str)
        else float(target.value)
    )
    chosen = select_targets(
        scores.fillna(0.0), value, target.top, target.share, target.budget, target.cost
    )
    narrowed = np.zeros_like(mask)
    narrowed[np.asarray(chosen, dtype=np.int64)] = True
    return narrowed


def _occasions(
    trigger: SegmentTrigger | InactiveTrigger | EventTrigger,
    segment_ids: list[int],
    table: _Table,
    inputs: PlanInputs,
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.object_]]:
    """Which customers a per-customer trigger fires for, and each one's occasion (its window).

    Occasion strings are made only for the customers it fires for.
    """
    n = len(table.ids)
    occasions = np.full(n, None, dtype=object)
    stamp = f"{inputs.at:%Y-%m-%dT%H:%MZ}"
    if isinstance(trigger, SegmentTrigger):
        if inputs.previous_segments.empty:
            return np.zeros(n, dtype=bool), occasions  # a first assignment is a baseline
        before = inputs.previous_segments.reindex(table.index).to_numpy(dtype=float)
        changed = ~np.isnan(before) & (before != table.segments)
        if trigger.type == "segment_entered":
            hit = changed & np.isin(table.segments, segment_ids)
        else:
            hit = changed & np.isin(before, segment_ids)
        occasions[hit] = f"{trigger.type.removeprefix('segment_')}@{stamp}"
        return hit, occasions
    if isinstance(trigger, InactiveTrigger):
        # One message per inactive spell: the key is the day of the last purchase.
        recency = table.frame["recency"].to_numpy(dtype=float)
        hit = recency >= trigger.days
        now = (
            np.datetime64(pd.Timestamp(inputs.at).as_unit("s"))
            if table.times is None
            else table.times[hit].astype("datetime64[s]")
        )
        last = now - (recency[hit] * 86_400).astype("timedelta64[s]")
        days = np.datetime_as_string(last, unit="D")
        occasions[hit] = np.char.add("inactive-since-", days).astype(object)
        return hit, occasions
    events = inputs.events
    if table.times is None:
        at: pd.Timestamp | npt.NDArray[np.datetime64] = pd.Timestamp(inputs.at)
    else:
        # Each event against its customer's own run time (NaT, matching nothing, for others).
        owners = table.index.get_indexer(pd.Index(events["customer_id"].astype(str), dtype=object))
        known = (owners >= 0) & (len(table.times) > 0)
        at = np.full(len(owners), np.datetime64("NaT", "ns"))
        at[known] = table.times[owners[known]]
    since = at - pd.Timedelta(parse_duration(trigger.within))
    recent = events[
        (events["event"] == trigger.event)
        & (events["occurred_at"] > since)
        & (events["occurred_at"] <= at)
    ]
    latest = recent.groupby("customer_id")["occurred_at"].max()
    rows = table.index.get_indexer(latest.index.astype(str))
    known = rows >= 0
    hit = np.zeros(n, dtype=bool)
    hit[rows[known]] = True
    when = np.datetime_as_string(latest.to_numpy(dtype="datetime64[s]")[known], unit="s")
    occasions[rows[known]] = np.char.add(f"{trigger.event}@", when).astype(object)
    return hit, occasions


def _unsubscribed(topic: str, topic_suppressed: Mapping[str, Set[str]]) -> set[str]:
    """Customers a campaign of ``topic`` leaves out: unsubscribed from it, or from all marketing
    (``*``), which never stops a transactional campaign."""
    found = set(topic_suppressed.get(topic, ()))
    if topic != TRANSACTIONAL:
        found |= set(topic_suppressed.get("*", ()))
    return found


def _arbitrate(
    plans: list[CampaignPlan], config: Config, inputs: PlanInputs, table: _Table
) -> list[CampaignPlan]:
    settings = config.settings
    due = sorted((p for p in plans if p.status == DUE), key=lambda p: (-p.config.priority, p.name))
    taken_this_run = np.zeros(len(table.ids), dtype=np.int64)
    suppressed = np.isin(table.ids, list(inputs.suppressed))
    # Global caps count every campaign's messages: earlier ones, then this run's as they are taken.
    global_used = [table.cap_counts(cap, inputs.at, None) for cap in settings.caps]
    arbitrated: dict[str, CampaignPlan] = {}
    for plan in due:
        rows = plan.audience["position"].to_numpy(dtype=np.int64)
        # Each step's leavers, in order: a customer is left out for the first reason that applies.
        steps: list[tuple[npt.NDArray[np.bool_], str]] = []
        keep = ~suppressed[rows]
        unsubscribed = _unsubscribed(plan.config.topic, inputs.topic_suppressed)
        if unsubscribed:
            keep &= ~np.isin(table.ids[rows], list(unsubscribed))
        steps.append((~keep, SUPPRESSED))
        for cap in plan.config.caps:
            under = table.cap_counts(cap, inputs.at, plan.name)[rows] < cap.messages
            steps.append((keep & ~under, CAMPAIGN_CAP))
            keep &= under
        for cap, counts in zip(settings.caps, global_used, strict=True):
            under = counts[rows] < cap.messages
            steps.append((keep & ~under, GLOBAL_CAP))
            keep &= under
        under = taken_this_run[rows] < settings.max_messages_per_customer_per_run
        steps.append((keep & ~under, LOWER_PRIORITY))
        keep &= under
        taken = rows[keep]
        taken_this_run[taken] += 1
        for counts in global_used:
            counts[taken] += 1
        earlier = plan.left_out_rows
        gone = [rows[mask] for mask, _ in steps]
        positions = np.concatenate([earlier["position"].to_numpy(np.int64), *gone])
        codes = np.concatenate(
            [
                earlier["reason"].cat.codes.to_numpy(np.int8),
                *(
                    np.full(len(g), _code(reason), np.int8)
                    for g, (_, reason) in zip(gone, steps, strict=True)
                ),
            ]
        )
        left_rows = _left_frame(positions, table.segments[positions], codes)
        arbitrated[plan.name] = CampaignPlan(
            plan.name,
            plan.config,
            plan.status,
            plan.window,
            plan.audience,
            plan.audience.loc[keep],
            _counts(left_rows),
            left_rows,
            plan.condition_problems,
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
