"""What every count of messages is called, in ``run``, ``status``, ``plan`` and their JSON.

A campaign's audience is the customers its segments, condition and trigger match. Each of them
ends in exactly one of three places::

    audience = planned + held_out + left out (by reason)

and each planned message is in exactly one state::

    planned = sent + deferred + queued + failed + suppressed + render_failed

``sent`` counts only messages the channel confirmed. ``deferred`` messages wait for the end of the
customer's quiet hours (a time after the run's ``--at``); ``queued`` ones wait for delivery (a
paused outbox, a retry after a transient error, or a worker that has not reached them yet).
``failed`` includes bounces. ``suppressed`` and ``render_failed`` are messages stopped at send
time because the customer was suppressed after queueing, and messages whose template failed for
that customer. ``held_out`` customers are in an experiment's holdout: measured, never messaged.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

#: The states of a planned message, in the order they are shown.
FATES = ("sent", "deferred", "queued", "failed", "suppressed", "render_failed")

#: Outbox status -> the count it adds to ("queued" rows are split into deferred and queued).
_BY_STATUS = {
    "sent": "sent",
    "queued": "queued",
    "sending": "queued",
    "failed": "failed",
    "bounced": "failed",
    "suppressed": "suppressed",
    "render_failed": "render_failed",
    "held_out": "held_out",
}


def fate(status: str, deferred: bool) -> str:
    """The count an outbox row in ``status`` adds to (``deferred``: queued for after ``--at``)."""
    if status == "queued" and deferred:
        return "deferred"
    return _BY_STATUS.get(status, "queued")


@dataclass
class Counts:
    """Counts of one campaign and segment (or of a whole run); see the module docstring."""

    audience: int = 0
    planned: int = 0
    sent: int = 0
    deferred: int = 0
    queued: int = 0
    failed: int = 0
    suppressed: int = 0
    render_failed: int = 0
    held_out: int = 0
    #: Customers matched but not messaged, by reason ("frequency cap", "lower priority"...).
    left_out: dict[str, int] = field(default_factory=dict)
    #: When the first and the last deferred message may go (naive UTC), if any is deferred.
    deferred_from: datetime | None = None
    deferred_until: datetime | None = None

    def add(self, other: Counts) -> None:
        """Add ``other``'s counts to these."""
        for name in ("audience", "planned", *FATES, "held_out"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for reason, n in other.left_out.items():
            self.left_out[reason] = self.left_out.get(reason, 0) + n
        self.defer(other.deferred_from, other.deferred_until)

    def defer(self, first: datetime | None, last: datetime | None) -> None:
        """Widen the deferral span to include ``first`` .. ``last``."""
        if first is not None:
            self.deferred_from = min(filter(None, (self.deferred_from, first)))
        if last is not None:
            self.deferred_until = max(filter(None, (self.deferred_until, last)))

    @property
    def left_out_total(self) -> int:
        """Everyone left out, whatever the reason."""
        return sum(self.left_out.values())

    def to_json(self) -> dict[str, Any]:
        """The counts with snake_case keys; times as ISO 8601, reasons as they read."""
        data: dict[str, Any] = {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if f.name not in ("left_out", "deferred_from", "deferred_until")
        }
        data["left_out"] = self.left_out_total
        data["left_out_by_reason"] = dict(sorted(self.left_out.items()))
        data["deferred_from"] = _iso(self.deferred_from)
        data["deferred_until"] = _iso(self.deferred_until)
        return data


def fates_sentence(counts: Counts) -> str:
    """``"4,142 sent, 734 deferred until quiet hours end"``: the planned messages' states that
    are not zero (``sent`` always)."""
    parts = [f"{counts.sent:,} sent"]
    for name, label in (
        ("deferred", "deferred until quiet hours end"),
        ("queued", "queued"),
        ("failed", "failed"),
        ("suppressed", "suppressed"),
        ("render_failed", "failed to render"),
    ):
        if getattr(counts, name):
            parts.append(f"{getattr(counts, name):,} {label}")
    return ", ".join(parts)


def total(parts: Iterable[Counts]) -> Counts:
    """The sum of several counts."""
    summed = Counts()
    for part in parts:
        summed.add(part)
    return summed


def from_outbox(rows: Iterable[Mapping[str, Any]]) -> Counts:
    """Counts from outbox rows grouped as :func:`store.readonly.message_counts` returns them."""
    counts = Counts()
    for row in rows:
        name = fate(str(row["status"]), bool(row["deferred"]))
        n = int(row["n"])
        setattr(counts, name, getattr(counts, name) + n)
        if name != "held_out":
            counts.planned += n
        if name == "deferred":
            counts.defer(row["first_attempt_at"], row["last_attempt_at"])
    return counts


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat(timespec="seconds")
