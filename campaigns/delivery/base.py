"""The channel interface: how a batch of outbox messages leaves the building.

A channel receives claimed outbox rows and reports, per message, one :class:`Result`: sent (and
where), to be retried (a transient error: a timeout, a dropped connection, SMTP 4xx, HTTP 5xx),
failed for good, or bounced (the address is refused for good; the customer is then suppressed).
The drain loop turns those into outbox states, retry times and suppressions, so a channel never
touches the store. Adding a channel is one module beside this one plus one entry in
:func:`campaigns.delivery.make_channel`.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

import pandas as pd

#: What a message says and to whom: the fields a channel passes on (files, webhook bodies).
MESSAGE_FIELDS = (
    "idempotency_key",
    "campaign",
    "customer_id",
    "segment_id",
    "variant",
    "recipient",
    "subject",
    "body_text",
    "body_html",
    "headers",
)

#: The outbox columns a channel may read from a batch.
BATCH_COLUMNS = ("id", *MESSAGE_FIELDS, "attempts")


class Fate(StrEnum):
    """What became of one message."""

    SENT = "sent"
    RETRY = "retry"
    FAILED = "failed"
    BOUNCED = "bounced"


@dataclass(frozen=True)
class Result:
    """One message's fate, with where it went (sent) or why not (the others)."""

    fate: Fate
    destination: str | None = None
    error: str | None = None

    @classmethod
    def sent(cls, destination: str) -> Result:
        return cls(Fate.SENT, destination=destination)

    @classmethod
    def retry(cls, error: str) -> Result:
        return cls(Fate.RETRY, error=error)

    @classmethod
    def failed(cls, error: str) -> Result:
        return cls(Fate.FAILED, error=error)

    @classmethod
    def bounced(cls, error: str) -> Result:
        return cls(Fate.BOUNCED, error=error)


#: Told each message's result as soon as the channel knows it: ``on_result(message_id, result)``.
OnResult = Callable[[int, Result], None]


@dataclass(frozen=True)
class Outcome:
    """What happened to the messages of one batch: ``results[i]`` is message ``ids[i]``'s."""

    ids: list[int]
    results: list[Result]


class Channel(ABC):
    """A delivery channel (file export, SMTP, webhook).

    A channel may hold connections across batches; the drain loop calls :meth:`close` when done.
    """

    name: str
    #: Messages claimed and handed to :meth:`send` at once.
    batch_size: int = 1_000

    @abstractmethod
    def send(self, batch: pd.DataFrame, label: str, on_result: OnResult | None = None) -> Outcome:
        """Deliver every message of ``batch`` (rows of the outbox, :data:`BATCH_COLUMNS`).

        It must not raise for a message's own failure: that is a :class:`Result`. It may raise
        :class:`campaigns.errors.DeliveryError` when it cannot work at all; the batch then stays
        claimed until its lease expires, and is delivered later.

        :param batch: the claimed messages, in outbox order
        :param label: names this delivery (run id and time), for file names and logs
        :param on_result: called with each message's id and result as soon as it is known (from
            the sending thread), so the drain can record a send before the next one starts: a
            crash then re-sends at most the message in flight
        :return: one result per message
        """

    def close(self) -> None:  # noqa: B027 - most channels hold nothing
        """Release connections held between batches."""


def message_id(idempotency_key: str, domain: str) -> str:
    """A stable RFC 5322 Message-ID for a message: the same key always gives the same id.

    Receivers (and mail servers) drop a second copy with a Message-ID they have seen, which is
    what makes at-least-once delivery after a crash safe.
    """
    digest = hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]
    return f"<{digest}@{domain}>"
