"""What each engagement does to the store: one event (idempotent) and, for an unsubscribe, a
hard bounce or a complaint, the suppression, in one transaction."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from sqlalchemy import Engine

from campaigns.engagement.webhooks import ProviderEvent
from store.events import (
    ALL_TOPICS,
    Event,
    SentMessage,
    latest_message_to,
    message_by_ref,
    record,
    resubscribe,
    suppress,
    suppress_topic,
    topics_of,
)

#: User agents of image proxies, link scanners and other machines that fetch what a person
#: did not open or click. Apple Mail Privacy Protection cannot be told by its user agent: that
#: is why the reports call opens an unreliable signal.
MACHINE_AGENTS = re.compile(
    r"googleimageproxy|yahoomailproxy|ymailproxy|bot\b|spider|crawler|preview|scanner|"
    r"barracuda|mimecast|proofpoint|symantec|trendmicro|safelinks|headless|python-urllib|"
    r"python-requests|curl/|wget/|go-http-client",
    re.IGNORECASE,
)


def is_machine(user_agent: str | None) -> bool:
    """Whether a user agent is a known prefetcher (or none at all)."""
    return not user_agent or MACHINE_AGENTS.search(user_agent) is not None


def record_click(
    engine: Engine, ref: str, link: int, user_agent: str | None, now: datetime, soon: float
) -> str | None:
    """Record a click on link ``link`` of message ``ref``; return its target, or None when the
    message or link is unknown (nothing is recorded then). A click within ``soon`` seconds of
    sending is a machine's (a link scanner checks mail as it arrives)."""
    with engine.begin() as connection:
        message = message_by_ref(connection, ref)
        if message is None or not 0 <= link < len(message.links):
            return None
        machine = is_machine(user_agent) or (
            message.sent_at is not None and now - message.sent_at < timedelta(seconds=soon)
        )
        record(
            connection,
            Event(
                kind="click",
                dedupe_key=f"click:{ref}:{link}:{'machine' if machine else 'human'}",
                occurred_at=now,
                source="endpoint",
                message=message,
                link=link,
                machine=machine,
            ),
        )
        return message.links[link]


def record_open(engine: Engine, ref: str, user_agent: str | None, now: datetime) -> bool:
    """Record an open of message ``ref`` (human or machine); False if the message is unknown."""
    machine = is_machine(user_agent)
    with engine.begin() as connection:
        message = message_by_ref(connection, ref)
        if message is None:
            return False
        record(
            connection,
            Event(
                kind="open",
                dedupe_key=f"open:{ref}:{'machine' if machine else 'human'}",
                occurred_at=now,
                source="endpoint",
                message=message,
                machine=machine,
            ),
        )
    return True


def find_message(engine: Engine, ref: str) -> SentMessage | None:
    """The message with reference ``ref``, or None."""
    with engine.connect() as connection:
        return message_by_ref(connection, ref)


def subscriptions(engine: Engine, customer_id: str) -> set[str]:
    """The topics a customer is unsubscribed from (``*``: all marketing)."""
    with engine.connect() as connection:
        return topics_of(connection, customer_id)


def unsubscribe(
    engine: Engine, message: SentMessage, topics: set[str], now: datetime, source: str
) -> None:
    """Unsubscribe the message's customer from ``topics`` (``*``: all marketing) at once."""
    with engine.begin() as connection:
        for topic in sorted(topics):
            record(
                connection,
                Event(
                    kind="unsubscribe",
                    dedupe_key=f"unsubscribe:{message.ref}:{topic}",
                    occurred_at=now,
                    source=source,
                    message=message,
                    detail=topic,
                ),
            )
            suppress_topic(connection, message.customer_id, topic, f"unsubscribed ({source})", now)


def set_preferences(
    engine: Engine, message: SentMessage, keep: set[str], stop: set[str], now: datetime
) -> None:
    """The preference page's answer: resubscribe to ``keep``, unsubscribe from ``stop``."""
    with engine.begin() as connection:
        for topic in sorted(keep):
            resubscribe(connection, message.customer_id, topic)
    if stop:
        unsubscribe(engine, message, stop, now, "preferences")


def record_provider_events(
    engine: Engine, events: list[ProviderEvent], source: str
) -> tuple[int, int, int]:
    """Store provider events in one transaction; return (stored, repeats, unmatched).

    An event whose message (or recipient) is not in the outbox is kept with no message, and
    counted as unmatched. A hard bounce suppresses the customer; a complaint stops all
    marketing to them.
    """
    stored = repeats = unmatched = 0
    with engine.begin() as connection:
        for event in events:
            message = message_by_ref(connection, event.message) if event.message else None
            if message is None and event.recipient:
                message = latest_message_to(connection, event.recipient)
            if message is None:
                unmatched += 1
            detail = "hard" if event.hard else ("soft" if event.kind == "bounce" else None)
            if event.reason:
                detail = f"{detail}: {event.reason}" if detail else event.reason
            new = record(
                connection,
                Event(
                    kind=event.kind,
                    dedupe_key=f"{source}:{event.id}",
                    occurred_at=event.occurred_at,
                    source=source,
                    message=message,
                    detail=detail,
                ),
            )
            if not new:
                repeats += 1
                continue
            stored += 1
            if message is None:
                continue
            if event.kind == "bounce" and event.hard:
                suppress(connection, message.customer_id, f"bounced: {detail}", event.occurred_at)
            elif event.kind == "complaint":
                suppress_topic(
                    connection, message.customer_id, ALL_TOPICS, "complained", event.occurred_at
                )
    return stored, repeats, unmatched
