"""Trigger windows: the latest fire time at or before a run, in the campaign's timezone."""

from __future__ import annotations

from datetime import datetime

import pytest

from campaigns.config.rules import OnceTrigger, ScheduleTrigger
from campaigns.triggers import last_fire, next_fire


def cron(expression: str, timezone: str = "UTC") -> ScheduleTrigger:
    return ScheduleTrigger(type="schedule", cron=expression, timezone=timezone)


@pytest.mark.parametrize(
    ("trigger", "at", "fired"),
    [
        # Monday 09:00 in London is 09:00 UTC in winter and 08:00 UTC in summer.
        (
            cron("0 9 * * MON", "Europe/London"),
            datetime(2026, 11, 23, 15),
            datetime(2026, 11, 23, 9),
        ),
        (
            cron("0 9 * * MON", "Europe/London"),
            datetime(2026, 11, 23, 8),
            datetime(2026, 11, 16, 9),
        ),
        (cron("0 9 * * MON", "Europe/London"), datetime(2026, 7, 6, 12), datetime(2026, 7, 6, 8)),
        (cron("* * * * *"), datetime(2026, 11, 23, 15, 3, 20), datetime(2026, 11, 23, 15, 3)),
        (cron("0 0 1 1 *"), datetime(2026, 11, 23), datetime(2026, 1, 1)),
        (
            cron("30 10 * * *", "America/New_York"),
            datetime(2026, 1, 5, 15, 29),
            datetime(2026, 1, 4, 15, 30),
        ),
    ],
)
def test_last_fire(trigger: ScheduleTrigger, at: datetime, fired: datetime) -> None:
    window = last_fire(trigger, at)
    assert window is not None
    assert window.fired_at == fired


def test_window_key_is_minute_precision_utc() -> None:
    window = last_fire(cron("15 7 * * *", "Europe/Berlin"), datetime(2026, 2, 1, 12))
    assert window is not None
    assert window.key == "2026-02-01T06:15Z"


def test_once_trigger_fires_only_after_its_time() -> None:
    once = OnceTrigger(type="once", at=datetime(2026, 12, 1, 9), timezone="Europe/Paris")
    assert last_fire(once, datetime(2026, 12, 1, 7, 59)) is None
    window = last_fire(once, datetime(2026, 12, 1, 8))
    assert window is not None
    assert window.fired_at == datetime(2026, 12, 1, 8)
    assert next_fire(once, datetime(2026, 11, 1)) == datetime(2026, 12, 1, 8)
    assert next_fire(once, datetime(2026, 12, 2)) is None


def test_next_fire_is_strictly_after() -> None:
    daily = cron("0 10 * * *")
    assert next_fire(daily, datetime(2026, 1, 1, 10)) == datetime(2026, 1, 2, 10)
    assert next_fire(daily, datetime(2026, 1, 1, 9, 59)) == datetime(2026, 1, 1, 10)
