"""``campaign forecast``: simulate the coming days of runs to see message pressure and conflicts.

The simulation plans a run at every fire time of every scheduled campaign in the horizon, and once
a day at noon UTC for the per-customer triggers, with the real planner, the real caps and the
messages it has already "sent" in the simulation. Customers and segments stay as they are now
(recency grows with the days); events that have not happened yet are not invented. It writes
nothing.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import combinations
from typing import Any

import pandas as pd
from sqlalchemy import Engine

from campaigns.config.rules import OnceTrigger, ScheduleTrigger
from campaigns.config.schema import Config
from campaigns.inputs import gather_inputs
from campaigns.journeys.forecast import JourneyForecast, forecast_journeys
from campaigns.keys import idempotency_key
from campaigns.planner import (
    ALREADY_PLANNED,
    ALREADY_SENT,
    CAMPAIGN_CAP,
    DUE,
    GLOBAL_CAP,
    LOWER_PRIORITY,
    NO_TRIGGER,
    SUPPRESSED,
    PlanInputs,
    plan_campaigns,
)
from campaigns.run import Prepared, prepare
from campaigns.triggers import fire_times
from store import outbox
from store.engine import opened_store


@dataclass
class Forecast:
    """What the coming ``days`` of runs would send."""

    start: datetime
    days: int
    #: Messages per day and campaign.
    per_day: dict[str, Counter[str]] = field(default_factory=dict)
    #: Per day: how many customers get 1, 2, 3... messages that day.
    pressure: dict[str, Counter[int]] = field(default_factory=dict)
    #: Customers left out by a cap, per campaign.
    cap_collisions: Counter[str] = field(default_factory=Counter)
    #: (campaign, campaign) -> customer-days both wanted (same customer, same day, before
    #: arbitration decided between them).
    overlaps: Counter[tuple[str, str]] = field(default_factory=Counter)
    #: Campaigns that send nothing in the horizon, with the reason.
    never: dict[str, str] = field(default_factory=dict)
    runs: int = 0
    #: Each enabled journey over the horizon (:mod:`campaigns.journeys.forecast`).
    journeys: list[JourneyForecast] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The forecast as ``campaign forecast --format json`` prints it."""
        return {
            "start": self.start.isoformat(timespec="seconds"),
            "days": self.days,
            "simulated_runs": self.runs,
            "per_day": [
                {
                    "day": day,
                    "messages": {name: int(n) for name, n in sorted(self.per_day[day].items())},
                    "customers_by_messages": {
                        str(k): int(n) for k, n in sorted(self.pressure.get(day, {}).items())
                    },
                }
                for day in sorted(self.per_day)
            ],
            "held_back_by_caps": {n: int(c) for n, c in sorted(self.cap_collisions.items()) if c},
            "overlaps": [
                {"campaigns": [a, b], "customer_days": int(n)}
                for (a, b), n in sorted(self.overlaps.items())
            ],
            "never_sends": dict(self.never),
            "journeys": [j.to_json() for j in self.journeys],
            "warnings": self.warnings(),
        }

    def warnings(self) -> list[str]:
        """The findings ``campaign check`` warns about: overlaps and campaigns that never fire."""
        found = [
            f"campaigns {a} and {b} overlap: both want the same customer on the same day "
            f"{n:,} times in {self.days} days (priority decides)"
            for (a, b), n in sorted(self.overlaps.items())
        ]
        found += [
            f"campaign {name} never sends in {self.days} days: {why}"
            for name, why in self.never.items()
        ]
        return found


def schedule_fires(config: Config, start: datetime, days: int) -> dict[str, list[datetime]]:
    """Every fire time of each schedule (and once) campaign in the horizon, disabled ones too."""
    end = start + timedelta(days=days)
    return {
        name: fire_times(campaign.trigger, start, end)
        for name, campaign in config.campaigns.items()
        if isinstance(campaign.trigger, ScheduleTrigger | OnceTrigger)
    }


def run_times(
    config: Config, start: datetime, days: int, fires: dict[str, list[datetime]] | None = None
) -> list[datetime]:
    """When the simulated runs happen: every scheduled fire time, plus noon UTC each day.

    ``fires``: :func:`schedule_fires` of the same horizon, when the caller has them.
    """
    end = start + timedelta(days=days)
    noon = start.replace(hour=12, minute=0, second=0, microsecond=0)
    times = {noon + timedelta(days=d) for d in range(days + 1)}
    fires = schedule_fires(config, start, days) if fires is None else fires
    for name, campaign in config.campaigns.items():
        if campaign.enabled and name in fires:
            times.update(fires[name])
    return sorted(t for t in times if start <= t < end)


def forecast(config: Config, start: datetime, days: int = 14) -> Forecast:
    """Simulate ``days`` days of runs from ``start`` (naive UTC)."""
    with opened_store(config.store.url, config.root) as engine:
        ready = prepare(engine, config, start, persist=False)
        base = gather_inputs(engine, config, ready.customers, ready.shop, start)
        result = simulate(config, ready, base, start, days, planned_ahead(engine))
        result.journeys = forecast_journeys(engine, config, ready, base, start, days)
        return result


def planned_ahead(engine: Engine) -> Callable[[str, str], bool]:
    """Whether the store's outbox holds messages of a campaign from a schedule window on."""
    return lambda campaign, first: outbox.holds_windows_from(engine, campaign, first)


def simulate(
    config: Config,
    ready: Prepared,
    base: PlanInputs,
    start: datetime,
    days: int,
    ahead: Callable[[str, str], bool] | None = None,
) -> Forecast:
    """The forecast over a prepared workspace and its planning inputs at ``start``.

    It plans only what changes from one simulated run to the next (see
    :mod:`campaigns.simulation`); :func:`simulate_plainly` plans every run in full and gives the
    same forecast, slower. ``ahead`` (:func:`planned_ahead`) tells in one query whether real
    runs have already planned windows of the horizon; without it the simulation asks
    ``base.already_sent`` about every window.
    """
    # Imported here: the simulation builds a Forecast from this module.
    from campaigns.simulation import simulate_incrementally

    return simulate_incrementally(config, ready, base, start, days, ahead)


def simulate_plainly(
    config: Config, ready: Prepared, base: PlanInputs, start: datetime, days: int
) -> Forecast:
    """The forecast planned in full at every simulated run: the reference for :func:`simulate`."""
    result = Forecast(start=start, days=days)
    history = base.history.copy()
    windows = set(base.planned_windows)
    simulated_keys: set[str] = set()

    def already_sent(campaign: str, occasions: Collection[str]) -> set[str]:
        return set(base.already_sent(campaign, occasions)) | simulated_keys

    wanted: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    sent_to: dict[str, Counter[str]] = defaultdict(Counter)
    ever: Counter[str] = Counter()
    reasons: dict[str, Counter[str]] = defaultdict(Counter)
    for at in run_times(config, start, days):
        customers = ready.customers.copy()
        customers["recency"] = customers["recency"] + (at - start) / timedelta(days=1)
        inputs = PlanInputs(
            customers=customers,
            at=at,
            planned_windows=frozenset(windows),
            suppressed=base.suppressed,
            previous_segments=pd.Series(dtype="int64"),  # segments stay as they are
            events=base.events,
            history=history,
            already_sent=already_sent,
        )
        plans = plan_campaigns(config, inputs, ready.model.names)
        result.runs += 1
        day = f"{at:%Y-%m-%d}"
        result.per_day.setdefault(day, Counter())
        new = []
        for plan in plans:
            reasons[plan.name][plan.status] += 1
            reasons[plan.name].update(plan.left_out)
            if plan.status != DUE:
                continue
            if plan.window is not None:
                windows.add((plan.name, plan.window))
            wanted[day][plan.name].update(plan.audience["customer_id"].astype(str))
            result.cap_collisions[plan.name] += plan.left_out.get(CAMPAIGN_CAP, 0)
            result.cap_collisions[plan.name] += plan.left_out.get(GLOBAL_CAP, 0)
            ids = plan.selected["customer_id"].astype(str)
            if len(ids):
                ever[plan.name] += len(ids)
                result.per_day[day][plan.name] += len(ids)
                sent_to[day].update(ids)
                simulated_keys.update(
                    idempotency_key(plan.name, c, str(w))
                    for c, w in zip(ids, plan.selected["window"], strict=True)
                )
                new.append(
                    pd.DataFrame({"customer_id": ids, "campaign": plan.name, "created_at": at})
                )
        if new:
            history = pd.concat([history, *new], ignore_index=True)
    for day, counts in sent_to.items():
        result.pressure[day] = Counter(counts.values())
    for campaigns in wanted.values():
        for a, b in combinations(sorted(campaigns), 2):
            shared = len(campaigns[a] & campaigns[b])
            if shared:
                result.overlaps[(a, b)] += shared
    for name, campaign in config.campaigns.items():
        if campaign.enabled and ever[name] == 0:
            result.never[name] = _why_never(reasons[name])
    return result


def _why_never(seen: Counter[str]) -> str:
    """The main reason a campaign sent nothing, from its statuses and left-out counts."""
    if not seen[DUE]:
        if seen[NO_TRIGGER]:
            return "no customer meets its trigger"
        if seen[ALREADY_PLANNED]:
            return "its windows were already planned"
        return "its trigger does not fire"
    blocked = {
        r: seen[r] for r in (CAMPAIGN_CAP, GLOBAL_CAP, LOWER_PRIORITY, SUPPRESSED, ALREADY_SENT)
    }
    reason, count = max(blocked.items(), key=lambda item: item[1])
    if count == 0:
        return "its audience is empty (segments and condition select nobody)"
    return f"everyone in its audience is left out ({reason})"
