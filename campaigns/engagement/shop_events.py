"""The shop's own events in (``POST /events``): cart abandoned, order placed, signed up.

Authenticated with ``Authorization: Bearer KEY`` (the key in ``tracking.events_api_key_env``).
The body is ``{"events": [{"id": "...", "customer_id": "...", "event": "cart_abandoned",
"occurred_at": "2026-11-23T12:00:00Z"}, ...]}`` (at most 1,000 per request); a batch is
checked whole, and the first bad event is a 400 naming it. Idempotent by ``id``: an event
posted again is counted as a repeat, not stored twice. Stored in the events feed that ``event``
triggers read, so the next run (``campaign serve --check-every 1`` runs one a minute) fires on it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, text

from campaigns.engagement.webhooks import MAX_EVENTS, WebhookRefused, read_json
from store.bulk import time_param

_EVENT_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
#: An event this far in the future is a clock or unit mistake, refused.
_FUTURE = timedelta(days=1)


@dataclass(frozen=True)
class ShopEvent:
    """One validated event of the shop."""

    id: str
    customer_id: str
    event: str
    occurred_at: datetime


def parse_events(body: bytes, now: datetime) -> list[ShopEvent]:
    """Every event of the body, validated; the first bad one raises :class:`WebhookRefused`."""
    data = read_json(body)
    items = data.get("events") if isinstance(data, dict) else None
    if not isinstance(items, list) or not items:
        raise WebhookRefused(400, 'expected {"events": [...]} with at least one event')
    if len(items) > MAX_EVENTS:
        raise WebhookRefused(413, f"{len(items)} events in one request, at most {MAX_EVENTS}")
    events = []
    for number, item in enumerate(items, start=1):
        where = f"event #{number}"
        if not isinstance(item, dict):
            raise WebhookRefused(400, f"{where}: not an object")
        for key in ("id", "customer_id", "event", "occurred_at"):
            value = item.get(key)
            if not isinstance(value, str) or not value.strip() or len(value) > 200:
                raise WebhookRefused(
                    400, f"{where}: {key} must be a non-empty string (at most 200 characters)"
                )
        name = item["event"].strip()
        if not _EVENT_NAME.match(name):
            raise WebhookRefused(
                400, f"{where}: event {name[:64]!r} must be lowercase letters, digits and '_'"
            )
        try:
            when = datetime.fromisoformat(item["occurred_at"].replace("Z", "+00:00"))
        except ValueError:
            raise WebhookRefused(
                400, f"{where}: occurred_at {item['occurred_at'][:40]!r} is not an ISO 8601 time"
            ) from None
        if when.tzinfo is not None:
            when = when.astimezone(UTC).replace(tzinfo=None)
        if when > now + _FUTURE:
            raise WebhookRefused(
                400, f"{where}: occurred_at {when:%Y-%m-%d %H:%M} is in the future"
            )
        events.append(ShopEvent(item["id"].strip(), item["customer_id"].strip(), name, when))
    return events


def store_events(engine: Engine, events: list[ShopEvent]) -> tuple[int, int]:
    """Store the events in one transaction; return (new, repeats)."""
    stored = 0
    with engine.begin() as connection:
        for event in events:
            result = connection.execute(
                text(
                    "INSERT INTO customer_event (customer_id, event, occurred_at, event_id) "
                    "VALUES (:c, :e, :at, :id) ON CONFLICT (event_id) DO NOTHING"
                ),
                {
                    "c": event.customer_id,
                    "e": event.event,
                    "at": time_param(event.occurred_at),
                    "id": event.id,
                },
            )
            stored += int(result.rowcount)
    return stored, len(events) - stored
