"""A run with nothing due finds so before it reads the data.

A cron job that runs every few minutes mostly finds nothing to do, and used to read the whole
transaction log back, rebuild every feature and re-plan every campaign to find it. Each run now
records a *watermark* with its row in ``campaign_run``:

- ``marks``: the data's marks (:func:`store.watermarks.data_marks`: when the data was loaded, the
  last transaction and event id, the model versions, the number of suppressions) and a digest of
  the do-not-contact file;
- ``config``: the config's fingerprint;
- ``quiet_until``: the earliest time at which a per-customer trigger could fire on that data
  without anything new arriving (:func:`quiet_until`); absent when that cannot be told.

The next run (:func:`nothing_due`) compares, in a few indexed queries and before reading any
data: the same config, the same marks, its time not before the last run's and before
``quiet_until``, and no schedule campaign with a window that is due and not yet planned. Then no
campaign can fire: it delivers what the outbox holds (deferred messages whose time came, retries)
and says so in its summary.

Per-customer triggers and time. Segments are re-assigned from features that move with time
(recency), and model scores and lifetime values are computed at the run's time, so a per-customer
campaign (inactive, event) gives a ``quiet_until`` only when it takes every segment (``"*"``) and
its condition and target read only stored traits, ``frequency`` and ``monetary``. Then its
audience changes only when a customer's recency reaches an inactive trigger's days, an event
dated after the run comes due, a transaction dated after the run comes into the history, or a
cap that held someone back lets go (no sooner than one of their messages inside a cap's period
leaves it), or a customer left out for lower priority becomes free (this run gave them a message,
which holds them while it is inside a one-message global cap; without such a cap, at once).
Segment triggers never give a ``quiet_until`` (segments move with time).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from sqlalchemy import Engine, text
from sqlmodel import Session, col, select

from campaigns.config.journeys import EXIT_KEYWORDS
from campaigns.config.rules import (
    EventTrigger,
    InactiveTrigger,
    OnceTrigger,
    ScheduleTrigger,
    SegmentTrigger,
)
from campaigns.config.schema import Config
from campaigns.inputs import planned_windows
from campaigns.journeys.runner import entry_campaign
from campaigns.planner import (
    ALREADY_PLANNED,
    CAMPAIGN_CAP,
    DISABLED,
    GLOBAL_CAP,
    LOWER_PRIORITY,
    NOT_DUE,
    CampaignPlan,
    PlanInputs,
)
from campaigns.time_dependence import steady
from campaigns.triggers import last_fire
from store.bulk import time_param
from store.tables import CampaignRun
from store.watermarks import data_marks

#: A per-customer campaign's status in a run that found nothing due without planning.
NOTHING_NEW = "nothing new since the last run"

#: Margin for the float arithmetic of recency when a customer will reach an inactive trigger.
_MARGIN = timedelta(minutes=1)


@dataclass(frozen=True)
class Watermark:
    """What a run planned from, and until when nothing per-customer can fire on it."""

    marks: dict[str, str]
    config: str
    quiet_until: datetime | None
    #: The run that planned from this data (idle runs after it carry its watermark forward).
    run: int | None = None

    def to_json(self) -> dict[str, Any]:
        until = self.quiet_until
        return {
            "marks": dict(self.marks),
            "config": self.config,
            "quiet_until": until.isoformat() if until is not None else None,
            "run": self.run,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> Watermark | None:
        if not data:
            return None
        until = data.get("quiet_until")
        return cls(
            marks={str(k): str(v) for k, v in dict(data.get("marks", {})).items()},
            config=str(data.get("config", "")),
            quiet_until=datetime.fromisoformat(until) if until else None,
            run=int(data["run"]) if data.get("run") is not None else None,
        )


def marks(engine: Engine, config: Config) -> dict[str, str]:
    """The data's marks (see :func:`store.watermarks.data_marks`) and the do-not-contact file's
    digest, which can lift a suppression without touching the store."""
    found = data_marks(engine)
    if any(s.wait_for in ("click", "open") for j in config.journeys.values() for s in j.steps):
        # A click or open wakes an entry waiting for it.
        with engine.connect() as connection:
            last = connection.execute(text("SELECT max(id) FROM engagement_event")).scalar()
        found["last_engagement"] = "" if last is None else str(last)
    if any("unsubscribed" in j.exit_when for j in config.journeys.values()):
        # An unsubscribe from a topic makes a waiting entry exit (the suppressions mark counts
        # only unsubscribes from everything).
        with engine.connect() as connection:
            count = connection.execute(text("SELECT count(*) FROM topic_suppression")).scalar()
        found["topic_suppressions"] = str(count)
    if config.settings.do_not_contact is not None:
        path = config.path(config.settings.do_not_contact)
        content = path.read_bytes() if path.exists() else b""
        found["do_not_contact"] = hashlib.sha256(content).hexdigest()[:16]
    return found


def quiet_until(
    config: Config,
    inputs: PlanInputs,
    plans: list[CampaignPlan],
    traits: set[str],
    lines_after: datetime | None,
) -> datetime | None:
    """The earliest time at which a per-customer trigger could fire on this run's data, or None
    when that cannot be told (see the module docstring). ``traits``: the customer table's stored
    columns; ``lines_after``: the earliest stored transaction line dated after the run (it comes
    into the history then), None when there is none."""
    at = inputs.at
    until = datetime.max
    periods = {cap.period for cap in config.settings.caps}
    for campaign in config.campaigns.values():
        periods.update(cap.period for cap in campaign.caps)
    # A customer taken by a higher-priority campaign in this run is held by a global cap of one
    # message until this run's message leaves its period.
    single = [cap.period for cap in config.settings.caps if cap.messages == 1]
    taken_until = at + max(single) if single else at
    if lines_after is not None:
        until = min(until, lines_after)
    recency = inputs.customers["recency"].to_numpy(dtype=float)
    for journey in config.journeys.values():
        # Segments move with time: a journey that watches them cannot tell when it is quiet.
        watches = "left_segment" in journey.exit_when or any(
            s.wait_for == "left_segment" for s in journey.steps
        )
        if journey.enabled and (watches or "*" not in journey.segments):
            return None
        # An exit condition is checked on waiting entries at every run: one that moves with
        # time alone (recency, days_since) can make one exit with no new data.
        entry = entry_campaign(journey).model_copy(update={"segments": ["*"]})
        conditions = [item for item in journey.exit_when if item not in EXIT_KEYWORDS]
        if journey.enabled and not all(
            steady(entry.model_copy(update={"where": item}), traits) for item in conditions
        ):
            return None
    for plan in plans:
        campaign, trigger = plan.config, plan.config.trigger
        if not campaign.enabled or isinstance(trigger, ScheduleTrigger | OnceTrigger):
            continue
        if isinstance(trigger, SegmentTrigger) or not steady(campaign, traits):
            return None
        if isinstance(trigger, InactiveTrigger):
            below = recency[recency < trigger.days]
            if len(below):
                reach = at + timedelta(days=float(trigger.days - below.max())) - _MARGIN
                until = min(until, reach)
        elif isinstance(trigger, EventTrigger):
            events = inputs.events
            coming = events.loc[
                (events["event"] == trigger.event) & (events["occurred_at"] > at), "occurred_at"
            ]
            if len(coming):
                until = min(until, pd.Timestamp(coming.min()).to_pydatetime())
        reasons = plan.left_out_rows["reason"]
        if (reasons == LOWER_PRIORITY).any():
            until = min(until, taken_until)
        capped = plan.left_out_rows.loc[reasons.isin([CAMPAIGN_CAP, GLOBAL_CAP]), "position"]
        if len(capped):
            until = min(until, _uncapped(inputs, capped.to_numpy(np.int64), periods))
    return until


def _uncapped(inputs: PlanInputs, rows: npt.NDArray[np.int64], periods: set[timedelta]) -> datetime:
    """The earliest time a cap could stop holding back the customers at ``rows``: no cap lifts
    before one of their messages inside its period leaves it (this run's included, at ``at``)."""
    at = inputs.at
    ids = set(inputs.customers["customer_id"].astype(str).to_numpy(dtype=object)[rows])
    history = inputs.history
    mine = history["customer_id"].astype(str).isin(ids).to_numpy(dtype=bool)
    created = pd.to_datetime(history["created_at"]).to_numpy(dtype="datetime64[ns]")[mine]
    now = np.datetime64(pd.Timestamp(at).as_unit("ns"))
    earliest = datetime.max
    for period in periods:
        span = np.timedelta64(int(period.total_seconds()), "s")
        inside = created[(created > now - span) & (created <= now)]
        oldest = pd.Timestamp(inside.min()).to_pydatetime() if len(inside) else at
        earliest = min(earliest, min(oldest, at) + period)
    return earliest


@dataclass(frozen=True)
class Idle:
    """A run that found nothing due: the run whose watermark told, and each campaign's status
    (with its window, for schedules)."""

    since_run: int
    quiet_until: datetime
    watermark: Watermark
    statuses: dict[str, tuple[str, str | None]]

    def sentence(self) -> str:
        until = (
            "no per-customer trigger can fire on this data"
            if self.quiet_until == datetime.max
            else f"no per-customer trigger can fire before {self.quiet_until:%Y-%m-%d %H:%M} UTC"
        )
        return (
            f"nothing due: no new data since run {self.since_run}, no schedule window due, and "
            f"{until}; the run read no customer data"
        )


def nothing_due(engine: Engine, config: Config, at: datetime, fingerprint: str) -> Idle | None:
    """Whether a run at ``at`` has nothing to plan, told from the last run's watermark without
    reading any data; None when it must plan (see the module docstring)."""
    with Session(engine) as session:
        last = session.exec(select(CampaignRun).order_by(col(CampaignRun.id).desc())).first()
    if last is None or last.id is None or last.status != "succeeded" or at < last.at:
        return None
    watermark = Watermark.from_json(last.watermark)
    if watermark is None or watermark.quiet_until is None or at >= watermark.quiet_until:
        return None
    if watermark.config != fingerprint or watermark.marks != marks(engine, config):
        return None
    planned = planned_windows(engine)
    statuses: dict[str, tuple[str, str | None]] = {}
    for name, campaign in config.campaigns.items():
        trigger = campaign.trigger
        if not isinstance(trigger, ScheduleTrigger | OnceTrigger):
            statuses[name] = (NOTHING_NEW if campaign.enabled else DISABLED, None)
            continue
        window = last_fire(trigger, at)
        key = window.key if window is not None else None
        if not campaign.enabled:
            statuses[name] = (DISABLED, key)
        elif key is None:
            statuses[name] = (NOT_DUE, None)
        elif (name, key) in planned:
            statuses[name] = (ALREADY_PLANNED, key)
        else:
            return None  # a schedule window is due
    for journey in config.journeys.values():
        trigger = journey.trigger
        if journey.enabled and isinstance(trigger, ScheduleTrigger | OnceTrigger):
            # A schedule entry whose window fired since the last run enrols customers.
            now, then = last_fire(trigger, at), last_fire(trigger, last.at)
            if now is not None and (then is None or now.key != then.key):
                return None
    if config.journeys:
        # A journey step that is due (a wait that ended, a timeout, a send a cap held) is work.
        with engine.connect() as connection:
            due = connection.execute(
                text(
                    "SELECT count(*) FROM journey_entry WHERE status = 'active' AND due_at <= :at"
                ),
                {"at": time_param(at)},
            ).scalar_one()
        if due:
            return None
    since = watermark.run if watermark.run is not None else last.id
    return Idle(since, watermark.quiet_until, watermark, statuses)
