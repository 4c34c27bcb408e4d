"""What each engagement does to the store: one event (idempotent) and, for an unsubscribe, a
hard bounce or a complaint, the suppression, in one transaction."""

from __future__ import annotations

import logging
import re
import threading
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
    record_many,
    resubscribe,
    suppress,
    suppress_topic,
    topics_of,
)

#: User agents of image proxies, link scanners and other machines that fetch what a person
#: did not open or click. Apple Mail Privacy Protection cannot be told by its user agent: that
#: is why the reports call opens an unreliable signal.
log = logging.getLogger("campaign.listen")

MACHINE_AGENTS = re.compile(
    r"googleimageproxy|yahoomailproxy|ymailproxy|bot\b|spider|crawler|preview|scanner|"
    r"barracuda|mimecast|proofpoint|symantec|trendmicro|safelinks|headless|python-urllib|"
    r"python-requests|curl/|wget/|go-http-client",
    re.IGNORECASE,
)


def is_machine(user_agent: str | None) -> bool:
    """Whether a user agent is a known prefetcher (or none at all)."""
    return not user_agent or MACHINE_AGENTS.search(user_agent) is not None


class SentMessages:
    """Sent messages by reference, kept by one endpoint process for its clicks.

    What a click needs of its message (id, campaign, variant, customer, segment, sent time and
    link targets) does not change once the message is sent, so a sent message is read from the
    store once per process; one not sent yet is read again each time. At most ``size`` are
    kept (then the cache starts over)."""

    def __init__(self, engine: Engine, size: int = 200_000) -> None:
        self.engine = engine
        self.size = size
        self._sent: dict[str, SentMessage] = {}

    def cached(self, ref: str) -> SentMessage | None:
        """The message with reference ``ref`` if this process has read it, else None."""
        return self._sent.get(ref)

    def get(self, ref: str) -> SentMessage | None:
        """The message with reference ``ref``, or None."""
        found = self._sent.get(ref)
        if found is None:
            with self.engine.connect() as connection:
                found = message_by_ref(connection, ref)
            if found is not None and found.sent_at is not None:
                if len(self._sent) >= self.size:
                    self._sent.clear()
                self._sent[ref] = found
        return found


def record_click(
    engine: Engine,
    ref: str,
    link: int,
    user_agent: str | None,
    now: datetime,
    soon: float,
    messages: SentMessages | None = None,
) -> str | None:
    """Record a click on link ``link`` of message ``ref``; return its target, or None when the
    message or link is unknown (nothing is recorded then). A click within ``soon`` seconds of
    sending is a machine's (a link scanner checks mail as it arrives).

    The event is one statement in its own transaction; with ``messages``, a message already
    read by this process is not read again."""
    message = (messages or SentMessages(engine)).get(ref)
    event = click_event(message, link, user_agent, now, soon)
    if event is None or message is None:
        return None
    with engine.begin() as connection:
        record(connection, event)
    return message.links[link]


def click_event(
    message: SentMessage | None, link: int, user_agent: str | None, now: datetime, soon: float
) -> Event | None:
    """The event of a click on link ``link`` of ``message``, or None when there is no such
    message or link."""
    if message is None or not 0 <= link < len(message.links):
        return None
    # A click timed before the send says nothing about a scanner (another clock: a skewed
    # machine's, or a demo's simulated one); the user agent still tells.
    machine = is_machine(user_agent) or (
        message.sent_at is not None
        and timedelta(0) <= now - message.sent_at < timedelta(seconds=soon)
    )
    return Event(
        kind="click",
        dedupe_key=f"click:{message.ref}:{link}:{'machine' if machine else 'human'}",
        occurred_at=now,
        source="endpoint",
        message=message,
        link=link,
        machine=machine,
    )


class EventWriter:
    """Write-behind for clicks (``tracking.write_behind_ms``): the endpoint answers at once and
    a thread stores what came in every ``interval`` seconds, one transaction per batch.

    Durability: an event is in this process's memory for up to ``interval`` (plus the time a
    batch takes to store) after its redirect was answered; :meth:`close` (graceful shutdown)
    stores everything, but a process killed with SIGKILL, or a machine that dies, loses that
    window. A batch the store refuses (the database away) is kept and tried again, and logged.
    """

    def __init__(self, engine: Engine, interval: float) -> None:
        self.engine = engine
        self.interval = interval
        self._pending: list[Event] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="campaign-events", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def add(self, event: Event) -> None:
        with self._lock:
            self._pending.append(event)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.flush()

    def flush(self) -> int:
        """Store what is pending now; return how many events were stored."""
        with self._lock:
            batch, self._pending = self._pending, []
        if not batch:
            return 0
        try:
            with self.engine.begin() as connection:
                record_many(connection, batch)
        except Exception:
            log.exception("storing %d event(s) failed; they are kept and tried again", len(batch))
            with self._lock:
                self._pending[:0] = batch
            return 0
        return len(batch)

    def close(self) -> None:
        """Stop the thread and store everything still pending."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)
        while self._pending and self.flush():
            pass


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
