"""The outbox: messages are written here before any delivery, then claimed, sent and marked.

A message's idempotency key is unique, so planning the same (campaign, customer, window) twice
creates one row. Delivery claims a batch with a lease (``claimed_by``, ``claimed_until``); a lease
that expires (a killed run) makes the batch claimable again, so nothing is lost.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import Engine, text

from store.bulk import prepare_frame, read_frame, time_param

MESSAGE_COLUMNS = (
    "idempotency_key",
    "run_id",
    "campaign",
    "window",
    "customer_id",
    "segment_id",
    "variant",
    "channel",
    "recipient",
    "subject",
    "body_text",
    "body_html",
    "status",
    "attempts",
    "created_at",
)

_CHUNK = 20_000


def existing_keys(engine: Engine, campaign: str, window: str) -> set[str]:
    """Idempotency keys already in the outbox for one campaign window."""
    frame = read_frame(
        engine,
        'SELECT idempotency_key FROM message WHERE campaign = :c AND "window" = :w',
        params={"c": campaign, "w": window},
    )
    return set(frame["idempotency_key"])


def enqueue(engine: Engine, messages: pd.DataFrame) -> int:
    """Insert planned messages, skipping any whose idempotency key exists; return how many."""
    if messages.empty:
        return 0
    frame = messages.assign(status="queued", attempts=0)[list(MESSAGE_COLUMNS)]
    prepared = prepare_frame(frame)
    columns = ", ".join(f'"{c}"' for c in prepared.columns)
    marks = ", ".join(f":{c}" for c in prepared.columns)
    sql = text(
        f"INSERT INTO message ({columns}) VALUES ({marks}) ON CONFLICT (idempotency_key) DO NOTHING"
    )
    records: list[dict[str, Any]] = prepared.to_dict("records")  # type: ignore[assignment]
    run_id = int(frame["run_id"].iloc[0])
    with engine.begin() as connection:
        before = _count_run(connection, run_id)
        for start in range(0, len(records), _CHUNK):
            connection.execute(sql, records[start : start + _CHUNK])
        return _count_run(connection, run_id) - before


def _count_run(connection: Any, run_id: int) -> int:
    result = connection.execute(
        text("SELECT COUNT(*) FROM message WHERE run_id = :r"), {"r": run_id}
    )
    return int(result.scalar_one())


def claim(
    engine: Engine,
    channel: str,
    worker: str,
    now: datetime,
    limit: int = 10_000,
    lease: timedelta = timedelta(minutes=5),
) -> pd.DataFrame:
    """Claim up to ``limit`` queued (or lease-expired) messages of ``channel`` for ``worker``.

    PostgreSQL: the rows are locked with ``FOR UPDATE SKIP LOCKED`` so concurrent workers take
    different batches. SQLite has no row locks; its single writer makes the UPDATE atomic.
    """
    skip_locked = " FOR UPDATE SKIP LOCKED" if engine.dialect.name == "postgresql" else ""
    until = time_param(now + lease)
    with engine.begin() as connection:
        connection.execute(
            text(
                "UPDATE message SET status = 'sending', claimed_by = :worker, "
                "claimed_until = :until, attempts = attempts + 1 "
                "WHERE id IN (SELECT id FROM message WHERE channel = :channel AND "
                "(status = 'queued' OR (status = 'sending' AND claimed_until < :now)) "
                f"ORDER BY id LIMIT :limit{skip_locked})"
            ),
            {
                "worker": worker,
                "until": until,
                "channel": channel,
                "now": time_param(now),
                "limit": limit,
            },
        )
    return read_frame(
        engine,
        "SELECT * FROM message WHERE claimed_by = :worker AND status = 'sending' "
        "AND channel = :channel ORDER BY id",
        params={"worker": worker, "channel": channel},
    )


def mark_sent(engine: Engine, ids: list[int], destinations: list[str | None], at: datetime) -> None:
    """Mark messages sent, with where they went (one UPDATE per destination and id chunk)."""
    by_destination: dict[str | None, list[int]] = {}
    for message_id, destination in zip(ids, destinations, strict=True):
        by_destination.setdefault(destination, []).append(message_id)
    with engine.begin() as connection:
        for destination, group in by_destination.items():
            for start in range(0, len(group), _ID_CHUNK):
                chunk = group[start : start + _ID_CHUNK]
                marks = ", ".join(str(int(i)) for i in chunk)
                connection.execute(
                    text(
                        "UPDATE message SET status = 'sent', sent_at = :at, destination = :dest, "
                        "claimed_by = NULL, claimed_until = NULL, last_error = NULL "
                        f"WHERE id IN ({marks})"
                    ),
                    {"dest": destination, "at": time_param(at)},
                )


#: Ids per ``WHERE id IN (...)``; they are integers we read from the store, inlined safely.
_ID_CHUNK = 5_000


def mark_failed(engine: Engine, ids: list[int], errors: list[str]) -> None:
    """Mark messages failed with their error (they stay out of delivery until retried)."""
    if not ids:
        return
    with engine.begin() as connection:
        connection.execute(
            text(
                "UPDATE message SET status = 'failed', last_error = :err, "
                "claimed_by = NULL, claimed_until = NULL WHERE id = :id"
            ),
            [{"id": i, "err": e} for i, e in zip(ids, errors, strict=True)],
        )


def counts_by_status(engine: Engine) -> dict[str, int]:
    """How many outbox messages are in each state."""
    frame = read_frame(engine, "SELECT status, COUNT(*) AS n FROM message GROUP BY status")
    return {str(s): int(n) for s, n in zip(frame["status"], frame["n"], strict=True)}
