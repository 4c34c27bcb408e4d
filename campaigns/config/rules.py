"""Config models for when campaigns fire and how often customers may hear from us: triggers,
frequency caps and quiet hours."""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_CRON_FIELDS = 5
_DURATION = re.compile(r"^\s*(\d+)\s*([dhm])\s*$")
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


def check_timezone(value: str) -> str:
    """Accept an IANA timezone name such as ``Europe/London``."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown timezone {value!r}; use an IANA name such as 'Europe/London'"
        ) from None
    return value


def parse_duration(value: str) -> timedelta:
    """``"7d"``, ``"48h"`` or ``"30m"`` as a timedelta."""
    found = _DURATION.match(value)
    if not found or int(found.group(1)) == 0:
        raise ValueError(f"must be a positive duration such as '7d', '48h' or '30m', got {value!r}")
    return timedelta(**{_UNITS[found.group(2)]: int(found.group(1))})


class _Zoned(_Model):
    """A trigger whose times are read in an IANA timezone."""

    timezone: str = "UTC"

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        return check_timezone(value)


class ScheduleTrigger(_Zoned):
    """Fire on a cron schedule (minute hour day month weekday) in a timezone."""

    type: Literal["schedule"]
    cron: str

    @model_validator(mode="after")
    def _valid_cron(self) -> ScheduleTrigger:
        if len(self.cron.split()) != _CRON_FIELDS:
            raise ValueError(
                f"cron must have 5 fields (minute hour day month weekday), got {self.cron!r}"
            )
        try:
            CronTrigger.from_crontab(self.cron, timezone=self.timezone)
        except ValueError as exc:
            raise ValueError(f"invalid cron expression {self.cron!r}: {exc}") from None
        return self


class OnceTrigger(_Zoned):
    """Fire once, at a given time (a one-shot broadcast)."""

    type: Literal["once"]
    at: datetime


class SegmentTrigger(_Model):
    """Fire for each customer who entered (or left) one of the campaign's segments at a run.

    The first assignment of a store (no earlier memberships) is the baseline, not an entry.
    """

    type: Literal["segment_entered", "segment_exited"]


class InactiveTrigger(_Model):
    """Fire once per inactive spell: when a customer's last purchase is ``days`` or more ago."""

    type: Literal["inactive"]
    days: int = Field(gt=0)


class EventTrigger(_Model):
    """Fire for each event called ``event`` in the events feed (such as ``cart_abandoned``),
    if it happened within ``within`` before the run."""

    type: Literal["event"]
    event: str = Field(min_length=1)
    within: str = "1d"

    @field_validator("within")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_duration(value)
        return value


Trigger = Annotated[
    ScheduleTrigger | OnceTrigger | SegmentTrigger | InactiveTrigger | EventTrigger,
    Field(discriminator="type"),
]


class Cap(_Model):
    """At most ``messages`` messages per customer within ``per`` (such as 2 per "7d")."""

    messages: int = Field(ge=1)
    per: str

    @field_validator("per")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_duration(value)
        return value

    @property
    def period(self) -> timedelta:
        return parse_duration(self.per)


class QuietHours(_Model):
    """No message is delivered between ``start`` and ``end`` in the customer's own timezone;
    messages planned then are deferred to ``end``, not dropped."""

    start: time
    end: time

    @model_validator(mode="after")
    def _not_empty(self) -> QuietHours:
        if self.start == self.end:
            raise ValueError(f"start and end are both {self.start:%H:%M}; quiet hours need a span")
        return self
