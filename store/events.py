"""Engagement events and the suppressions they make (written by ``campaign listen``, provider
webhooks and imported files; read by reports, the planner and the send-time check).

The invariant: an event is stored once per ``dedupe_key`` (a repeat adds one to ``repeats``),
and an unsubscribe, hard bounce or complaint is a suppression in the same transaction as its
event, so a message still queued is withheld at send time and the next run leaves the customer
out. Suppressions: ``suppression`` stops every message to the customer (a hard bounce: the
address does not work); ``topic_suppression`` stops one topic, or with topic ``*`` every topic
but ``transactional`` (an unsubscribe from all, a complaint).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, text

from store.bulk import time_param

#: Every topic but transactional.
ALL_TOPICS = "*"
#: The topic no marketing unsubscribe stops.
TRANSACTIONAL = "transactional"
#: Event kinds the store keeps.
EVENT_KINDS = ("click", "open", "unsubscribe", "delivery", "bounce", "complaint")


@dataclass(frozen=True)
class SentMessage:
    """What the endpoint needs to know about one outbox message."""

    id: int
    ref: str
    campaign: str
    variant: str | None
    customer_id: str
    segment_id: int | None
    topic: str
    status: str
    sent_at: datetime | None
    links: tuple[str, ...]


_MESSAGE_SQL = (
    "SELECT id, ref, campaign, variant, customer_id, segment_id, topic, status, sent_at, links "
    "FROM message WHERE "
)


def _sent_message(row: Any) -> SentMessage:
    links = row.links
    if isinstance(links, str):
        links = json.loads(links)
    sent_at = row.sent_at
    if isinstance(sent_at, str):
        sent_at = datetime.fromisoformat(sent_at)
    return SentMessage(
        id=int(row.id),
        ref=str(row.ref),
        campaign=str(row.campaign),
        variant=row.variant,
        customer_id=str(row.customer_id),
        segment_id=None if row.segment_id is None else int(row.segment_id),
        topic=str(row.topic or "marketing"),
        status=str(row.status),
        sent_at=sent_at,
        links=tuple(links or ()),
    )


def message_by_ref(connection: Connection, ref: str) -> SentMessage | None:
    """The outbox message with reference ``ref``, or None."""
    row = connection.execute(text(_MESSAGE_SQL + "ref = :ref"), {"ref": ref}).first()
    return _sent_message(row) if row is not None else None


def message_by_id(connection: Connection, message_id: int) -> SentMessage | None:
    """The outbox message with id ``message_id``, or None."""
    row = connection.execute(text(_MESSAGE_SQL + "id = :id"), {"id": message_id}).first()
    return _sent_message(row) if row is not None else None


def latest_message_to(connection: Connection, recipient: str) -> SentMessage | None:
    """The newest message sent to an address (for provider events that name only it)."""
    row = connection.execute(
        text(
            _MESSAGE_SQL + "recipient = :r AND sent_at IS NOT NULL ORDER BY sent_at DESC, id DESC"
        ),
        {"r": recipient},
    ).first()
    return _sent_message(row) if row is not None else None


@dataclass(frozen=True)
class Event:
    """One event to record. ``message`` ties it to its outbox row, campaign, variant, customer."""

    kind: str
    dedupe_key: str
    occurred_at: datetime
    source: str
    message: SentMessage | None = None
    customer_id: str | None = None
    campaign: str | None = None
    link: int | None = None
    machine: bool = False
    detail: str | None = None


_RECORD_SQL = (
    "INSERT INTO engagement_event (dedupe_key, kind, message_id, campaign, variant, "
    "customer_id, segment_id, occurred_at, source, link, machine, repeats, detail) "
    "VALUES (:key, :kind, :mid, :campaign, :variant, :customer, :segment, :at, :source, "
    ":link, :machine, 0, :detail) ON CONFLICT (dedupe_key) DO UPDATE SET "
    "repeats = engagement_event.repeats + 1"
)


def _event_params(event: Event) -> dict[str, Any]:
    message = event.message
    return {
        "key": event.dedupe_key[:500],
        "kind": event.kind,
        "mid": message.id if message else None,
        "campaign": message.campaign if message else event.campaign,
        "variant": message.variant if message else None,
        "customer": message.customer_id if message else event.customer_id,
        "segment": message.segment_id if message else None,
        "at": time_param(event.occurred_at),
        "source": event.source,
        "link": event.link,
        "machine": event.machine,
        "detail": event.detail[:500] if event.detail else None,
    }


def record(connection: Connection, event: Event) -> bool:
    """Store ``event`` once; True if it is new, False if it repeats a stored one (counted)."""
    row = connection.execute(
        text(_RECORD_SQL + " RETURNING repeats"), _event_params(event)
    ).scalar_one()
    return int(row) == 0


def record_many(connection: Connection, events: Sequence[Event]) -> None:
    """Store ``events`` as :func:`record` does, one statement each, sent together (a repeat
    of an event in the same batch is counted as a repeat too)."""
    if events:
        connection.execute(text(_RECORD_SQL), [_event_params(e) for e in events])


def suppress(connection: Connection, customer_id: str, reason: str, at: datetime) -> bool:
    """Stop every message to a customer (a hard bounce); True if newly suppressed."""
    result = connection.execute(
        text(
            "INSERT INTO suppression (customer_id, reason, created_at) VALUES (:c, :r, :at) "
            "ON CONFLICT (customer_id) DO NOTHING"
        ),
        {"c": customer_id, "r": reason[:500], "at": time_param(at)},
    )
    return bool(result.rowcount)


def suppress_topic(
    connection: Connection, customer_id: str, topic: str, reason: str, at: datetime
) -> bool:
    """Stop one topic (``*``: every topic but transactional) for a customer; True if new."""
    result = connection.execute(
        text(
            "INSERT INTO topic_suppression (customer_id, topic, reason, created_at) "
            "VALUES (:c, :t, :r, :at) ON CONFLICT (customer_id, topic) DO NOTHING"
        ),
        {"c": customer_id, "t": topic, "r": reason[:500], "at": time_param(at)},
    )
    return bool(result.rowcount)


def resubscribe(connection: Connection, customer_id: str, topic: str) -> bool:
    """Lift a customer's suppression of one topic (``*``: the unsubscribe from all)."""
    result = connection.execute(
        text("DELETE FROM topic_suppression WHERE customer_id = :c AND topic = :t"),
        {"c": customer_id, "t": topic},
    )
    return bool(result.rowcount)


def topics_of(connection: Connection, customer_id: str) -> set[str]:
    """The topics a customer has unsubscribed from (``*`` for all)."""
    rows = connection.execute(
        text("SELECT topic FROM topic_suppression WHERE customer_id = :c"), {"c": customer_id}
    )
    return {str(r[0]) for r in rows}


def topic_suppressions(engine: Engine) -> dict[str, set[str]]:
    """Every per-topic suppression: topic (or ``*``) to customer ids."""
    found: dict[str, set[str]] = {}
    with engine.connect() as connection:
        for customer, topic in connection.execute(
            text("SELECT customer_id, topic FROM topic_suppression")
        ):
            found.setdefault(str(topic), set()).add(str(customer))
    return found


#: The SQL condition (over ``message``) of a message whose customer has unsubscribed from its
#: topic, or from all marketing; the send-time check uses it.
TOPIC_SUPPRESSED_SQL = (
    "EXISTS (SELECT 1 FROM topic_suppression t WHERE t.customer_id = message.customer_id "
    "AND (t.topic = COALESCE(message.topic, 'marketing') OR (t.topic = '*' AND "
    "COALESCE(message.topic, 'marketing') <> 'transactional')))"
)
