"""The channel interface: how a batch of outbox messages leaves the building.

A channel receives claimed outbox rows and reports, per message, where it went or why it
failed. Adding a channel is one module beside this one plus one entry in
:func:`campaigns.delivery.make_channel`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import pandas as pd

#: The outbox columns a channel may read from a batch.
BATCH_COLUMNS = (
    "id",
    "idempotency_key",
    "campaign",
    "customer_id",
    "segment_id",
    "variant",
    "recipient",
    "subject",
    "body_text",
    "body_html",
)


@dataclass(frozen=True)
class Outcome:
    """What happened to the messages of one batch, aligned with the batch's ``id`` column.

    ``destinations[i]`` is where message ``ids[i]`` went (a file path, a mail server) or None if
    it failed with ``errors[i]``.
    """

    ids: list[int]
    destinations: list[str | None]
    errors: list[str | None]


class Channel(ABC):
    """A delivery channel (file export, SMTP, webhook)."""

    name: str

    @abstractmethod
    def send(self, batch: pd.DataFrame, label: str) -> Outcome:
        """Deliver every message of ``batch`` (rows of the outbox, :data:`BATCH_COLUMNS`).

        :param batch: the claimed messages, in outbox order
        :param label: names this delivery (run id and time), for file names and logs
        :return: per message, where it went or the error
        """
