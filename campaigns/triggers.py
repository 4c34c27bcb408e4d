"""When a campaign fires: the trigger window that is due at a run's time.

A *window* is the latest fire time of a campaign's trigger at or before the run's ``at``. A
campaign is planned once per window (the store remembers planned windows), so a run that follows
missed fire times catches up once, not once per missed tick, and a repeated run plans nothing new.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

from campaigns.config.rules import OnceTrigger, ScheduleTrigger

#: How far back a schedule is searched for its latest fire time (a yearly cron still fires).
_MAX_LOOKBACK = timedelta(days=400)


@dataclass(frozen=True)
class Window:
    """A trigger window: when it fired (naive UTC) and its id in idempotency keys."""

    fired_at: datetime

    @property
    def key(self) -> str:
        return self.fired_at.strftime("%Y-%m-%dT%H:%MZ")


def _aware(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _once(trigger: OnceTrigger) -> datetime:
    """A one-shot trigger's time, aware (a naive ``at`` is in the trigger's timezone)."""
    fire = trigger.at
    return fire.replace(tzinfo=ZoneInfo(trigger.timezone)) if fire.tzinfo is None else fire


def last_fire(trigger: ScheduleTrigger | OnceTrigger, at: datetime) -> Window | None:
    """The latest fire time of ``trigger`` at or before ``at`` (naive UTC), or None."""
    now = _aware(at)
    if isinstance(trigger, OnceTrigger):
        fire = _once(trigger)
        return Window(_naive(fire)) if fire <= now else None
    cron = CronTrigger.from_crontab(trigger.cron, timezone=trigger.timezone)
    # Search back in doubling steps until a fire time lies in [now - lookback, now], then walk
    # forward to the last one: bounded work for any schedule, every-minute to yearly.
    lookback = timedelta(hours=1)
    while lookback <= _MAX_LOOKBACK * 2:
        start = now - lookback
        fire = cron.get_next_fire_time(None, start)
        if fire is not None and fire <= now:
            latest = fire
            while True:
                following = cron.get_next_fire_time(latest, latest + timedelta(seconds=1))
                if following is None or following > now:
                    return Window(_naive(latest))
                latest = following
        lookback *= 2
    return None


def next_fire(trigger: ScheduleTrigger | OnceTrigger, after: datetime) -> datetime | None:
    """The first fire time strictly after ``after`` (naive UTC), for status and plans."""
    now = _aware(after)
    if isinstance(trigger, OnceTrigger):
        fire = _once(trigger)
        return _naive(fire) if fire > now else None
    cron = CronTrigger.from_crontab(trigger.cron, timezone=trigger.timezone)
    fire = cron.get_next_fire_time(None, now + timedelta(seconds=1))
    return _naive(fire) if fire is not None else None


def fire_times(
    trigger: ScheduleTrigger | OnceTrigger, start: datetime, end: datetime
) -> list[datetime]:
    """Every fire time in ``[start, end)`` (naive UTC), the same as chaining :func:`next_fire`
    from just before ``start``, with the cron expression parsed once."""
    if isinstance(trigger, OnceTrigger):
        fire = _naive(_once(trigger))
        return [fire] if start <= fire < end else []
    cron = CronTrigger.from_crontab(trigger.cron, timezone=trigger.timezone)
    fires: list[datetime] = []
    after = _aware(start) - timedelta(seconds=1)
    while True:
        following = cron.get_next_fire_time(None, after + timedelta(seconds=1))
        if following is None:
            return fires
        fire = _naive(following)
        if fire >= end:
            return fires
        fires.append(fire)
        after = following


def _naive(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(tzinfo=None)
