"""Unsubscribes, bounces and complaints imported from a file (``campaign track``) become
engagement events and suppressions, exactly as if they had come through the endpoint."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import Engine

from store.events import ALL_TOPICS, Event, message_by_id, record, suppress, suppress_topic

#: The event kind of each importable file kind.
IMPORTED_KINDS = {"unsubscribes": "unsubscribe", "bounces": "bounce", "complaints": "complaint"}


def record_imported(engine: Engine, kind: str, rows: pd.DataFrame) -> list[bool]:
    """Store each row as an event (idempotent) and suppress its customer; return, per row,
    whether it was new (False: a repeat of a stored event, counted).

    Unsubscribes stop the row's ``topic`` (default: all marketing); complaints stop all
    marketing; bounces with ``bounce`` = hard (the default) stop every message. A row's
    ``message_id`` ties the event to that message when it was sent to the same customer.
    """
    event_kind = IMPORTED_KINDS[kind]
    fresh: list[bool] = []
    with engine.begin() as connection:
        records: list[dict[Any, Any]] = rows.to_dict("records")
        for row in records:
            customer = str(row["customer_id"])
            at: datetime = pd.Timestamp(row["timestamp"]).to_pydatetime()
            number = row.get("message_id")
            message = (
                message_by_id(connection, int(number))
                if number is not None and number is not pd.NA and number == number
                else None
            )
            if message is not None and message.customer_id != customer:
                message = None
            topic = str(row.get("topic") or "").strip() or ALL_TOPICS
            hard = str(row.get("bounce") or "hard").strip().lower() != "soft"
            reason = str(row.get("reason") or "").strip()
            detail = topic if kind == "unsubscribes" else None
            if kind == "bounces":
                detail = ("hard" if hard else "soft") + (f": {reason}" if reason else "")
            stored = record(
                connection,
                Event(
                    kind=event_kind,
                    dedupe_key=(
                        f"file:{event_kind}:{customer}:{at.isoformat()}:"
                        f"{message.id if message else ''}:{detail or ''}"
                    ),
                    occurred_at=at,
                    source="file",
                    message=message,
                    customer_id=customer,
                    detail=detail,
                ),
            )
            fresh.append(stored)
            if not stored:
                continue
            if kind == "unsubscribes":
                suppress_topic(connection, customer, topic, "unsubscribed (file)", at)
            elif kind == "complaints":
                suppress_topic(connection, customer, ALL_TOPICS, "complained (file)", at)
            elif hard:
                suppress(connection, customer, f"bounced: {detail}", at)
    return fresh
