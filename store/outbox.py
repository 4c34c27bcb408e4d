"""The outbox: messages are written here before any delivery, then claimed, sent and marked.

A message's idempotency key is unique, so planning the same (campaign, customer, window) twice
creates one row. Delivery claims a batch with a lease (``claimed_by``, ``claimed_until``); a lease
that expires (a killed run) makes the batch claimable again, so nothing is lost.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv
from sqlalchemy import Engine, text

from store.bulk import datetime_strings, read_frame, time_param
from store.events import TOPIC_SUPPRESSED_SQL

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
    "next_attempt_at",
    "headers",
    "last_error",
    "ref",
    "topic",
    "links",
)

_CHUNK = 20_000

#: Outbox states a message never leaves: a message that failed to render has no body to send.
NOT_REQUEUEABLE = frozenset({"render_failed"})


def existing_keys(engine: Engine, campaign: str, windows: Collection[str]) -> set[str]:
    """Idempotency keys already in the outbox for some of a campaign's trigger windows."""
    keys: set[str] = set()
    distinct = sorted(set(windows))
    for start in range(0, len(distinct), 500):
        chunk = distinct[start : start + 500]
        marks = ", ".join(f":w{i}" for i in range(len(chunk)))
        frame = read_frame(
            engine,
            f'SELECT idempotency_key FROM message WHERE campaign = :c AND "window" IN ({marks})',
            params={"c": campaign, **{f"w{i}": w for i, w in enumerate(chunk)}},
        )
        keys.update(frame["idempotency_key"])
    return keys


def history(engine: Engine, since: datetime) -> pd.DataFrame:
    """Messages planned after ``since`` that were not given up on (for frequency caps)."""
    return read_frame(
        engine,
        "SELECT customer_id, campaign, created_at FROM message WHERE created_at > :since "
        "AND status NOT IN ('failed', 'bounced', 'held_out', 'render_failed')",
        params={"since": time_param(since)},
        datetime_columns=["created_at"],
    )


def enqueue(engine: Engine, messages: pd.DataFrame) -> int:
    """Insert planned messages, skipping any whose idempotency key exists; return how many.

    One transaction (see :class:`Writer`, which takes messages a chunk at a time).
    """
    if messages.empty:
        return 0
    with writing(engine) as writer:
        return writer.write(messages)


@contextmanager
def writing(engine: Engine) -> Iterator[Writer]:
    """One transaction for writing messages to the outbox in chunks: committed at the end of
    the block, rolled back (nothing written) if it raises."""
    raw = engine.raw_connection()
    try:
        writer = Writer(raw, engine.dialect.name)
        yield writer
        raw.commit()
    except BaseException:
        raw.rollback()
        raise
    finally:
        raw.close()


class Writer:
    """Writes chunks of planned messages inside one transaction (:func:`writing`).

    SQLite: ``executemany`` of ``INSERT ... ON CONFLICT DO NOTHING``. PostgreSQL: ``COPY`` (CSV
    written by Arrow) straight into the table; if a key already exists (COPY cannot skip
    duplicates) it rolls back to a savepoint and copies into a temporary table instead, then
    ``INSERT ... SELECT ... ON CONFLICT DO NOTHING``.
    """

    def __init__(self, raw: Any, dialect: str) -> None:
        self._raw, self._dialect = raw, dialect
        self._cursor = raw.cursor()

    def write(self, messages: pd.DataFrame) -> int:
        """Insert one chunk of messages, skipping any whose key exists; return how many."""
        if messages.empty:
            return 0
        # Optional columns (next_attempt_at, headers) a caller left out are stored as NULL. A
        # caller may set a status (held-out occasions are stored as "held_out", never delivered).
        frame = messages.assign(attempts=0)
        if "status" not in frame:
            frame = frame.assign(status="queued")
        frame = frame.reindex(columns=list(MESSAGE_COLUMNS))
        columns = ", ".join(f'"{c}"' for c in MESSAGE_COLUMNS)
        if self._dialect == "postgresql":
            return _copy_new(self._cursor, frame, columns)
        marks = ", ".join("?" for _ in MESSAGE_COLUMNS)
        sql = (
            f"INSERT INTO message ({columns}) VALUES ({marks}) "
            "ON CONFLICT (idempotency_key) DO NOTHING"
        )
        before = int(self._raw.total_changes)
        for start in range(0, len(frame), _CHUNK):
            self._cursor.executemany(sql, _rows(frame.iloc[start : start + _CHUNK]))
        return int(self._raw.total_changes) - before


def _copy_new(cursor: Any, frame: pd.DataFrame, columns: str) -> int:
    data = _csv(frame)
    copy_sql = "COPY {table} ({columns}) FROM STDIN (FORMAT csv, HEADER true)"
    cursor.execute("SAVEPOINT enqueue")
    try:
        with cursor.copy(copy_sql.format(table="message", columns=columns)) as copy:
            copy.write(data)
    except psycopg.errors.UniqueViolation:
        cursor.execute("ROLLBACK TO SAVEPOINT enqueue")
    else:
        cursor.execute("RELEASE SAVEPOINT enqueue")
        return len(frame)
    # An earlier chunk of the same transaction may have made it (it is dropped at commit).
    cursor.execute("DROP TABLE IF EXISTS pg_temp.message_stage")
    cursor.execute(
        f"CREATE TEMP TABLE message_stage ON COMMIT DROP AS SELECT {columns} FROM message "
        "WITH NO DATA"
    )
    with cursor.copy(copy_sql.format(table="message_stage", columns=columns)) as copy:
        copy.write(data)
    cursor.execute(
        f"INSERT INTO message ({columns}) SELECT {columns} FROM message_stage "
        "ON CONFLICT (idempotency_key) DO NOTHING"
    )
    return int(cursor.rowcount)


def _storage_columns(frame: pd.DataFrame) -> dict[str, pd.Series]:
    """Datetime columns as storage strings, the others as they are."""
    return {
        name: (
            datetime_strings(frame[name])
            if pd.api.types.is_datetime64_any_dtype(frame[name])
            or name in ("created_at", "next_attempt_at")
            else frame[name]
        )
        for name in frame.columns
    }


def _rows(frame: pd.DataFrame) -> list[tuple[Any, ...]]:
    """Rows as plain tuples (times as storage strings, NaN as None), built column-wise."""
    lists = []
    for column in _storage_columns(frame).values():
        values = column.tolist()
        if column.isna().any():
            values = [None if v is None or v != v else v for v in values]
        lists.append(values)
    return list(zip(*lists, strict=True))


def _csv(frame: pd.DataFrame) -> bytes:
    """The frame as CSV for COPY: strings quoted, NULL as an unquoted empty field."""
    table = pa.Table.from_pandas(pd.DataFrame(_storage_columns(frame)), preserve_index=False)
    sink = io.BytesIO()
    pacsv.write_csv(table, sink)
    return sink.getvalue()


def claim(
    engine: Engine,
    channel: str,
    worker: str,
    now: datetime,
    limit: int = 10_000,
    lease: timedelta = timedelta(minutes=5),
    due_by: datetime | None = None,
) -> pd.DataFrame:
    """Claim up to ``limit`` deliverable messages of ``channel`` for ``worker``.

    Deliverable: queued and due (``next_attempt_at`` unset or at or before ``due_by``, by default
    ``now``), or sending under a lease that has expired (its worker died). The batch's
    ``claimed_by`` is ``worker`` plus a token unique to this claim, so the marks that follow
    touch only this batch. A drain passes its own start as ``due_by``, so that a message it has
    just tried waits for a later drain however long this one runs.

    PostgreSQL: the rows are locked with ``FOR UPDATE SKIP LOCKED`` so concurrent workers take
    different batches. SQLite has no row locks; its single writer makes the UPDATE atomic.
    """
    token = f"{worker}#{uuid.uuid4().hex[:8]}"
    params = {
        "token": token,
        "until": time_param(now + lease),
        "channel": channel,
        "now": time_param(now),
        "due": time_param(due_by or now),
        "limit": limit,
    }
    # One statement per batch: the claim returns the claimed rows (no second read by token).
    if engine.dialect.name == "postgresql":
        sql = (
            f"WITH picked AS (SELECT id FROM message WHERE {_DELIVERABLE} "
            "ORDER BY id LIMIT :limit FOR UPDATE SKIP LOCKED) "
            f"UPDATE message m SET {_CLAIM_SET} FROM picked WHERE m.id = picked.id RETURNING m.*"
        )
    else:
        sql = (
            f"UPDATE message SET {_CLAIM_SET} WHERE id IN (SELECT id FROM message "
            f"WHERE {_DELIVERABLE} ORDER BY id LIMIT :limit) RETURNING *"
        )
    with engine.begin() as connection:
        result = connection.execute(text(sql), params)
        columns = list(result.keys())
        rows = result.fetchall()
    # Column by column: much faster than a frame from a million Row objects.
    values = list(zip(*rows, strict=True)) if rows else [() for _ in columns]
    batch = pd.DataFrame({name: list(column) for name, column in zip(columns, values, strict=True)})
    return batch.sort_values("id", ignore_index=True)


#: Deliverable messages of ``:channel``: queued and due, or sending under a lapsed lease. The
#: first term lets the partial index on deliverable messages serve the query.
_DELIVERABLE = (
    "status IN ('queued', 'sending') AND channel = :channel AND "
    "((status = 'queued' AND (next_attempt_at IS NULL OR next_attempt_at <= :due)) "
    "OR (status = 'sending' AND claimed_until < :now))"
)

_CLAIM_SET = (
    "status = 'sending', claimed_by = :token, claimed_until = :until, attempts = attempts + 1"
)


def withhold_suppressed(
    engine: Engine, claimed_by: str, also: Collection[str] = ()
) -> pd.DataFrame:
    """Mark the claimed batch's messages to suppressed customers ``suppressed``; return them.

    The send-time check: a customer who unsubscribed, bounced or complained after their message
    was queued (or who is in ``also``, the do-not-contact file) is never sent it; nor is one
    who unsubscribed from the message's topic, or from all marketing (a transactional message
    still goes). Returns the
    withheld messages' ``id`` and ``campaign``.
    """
    with engine.begin() as connection:
        connection.execute(
            text(
                "UPDATE message SET status = 'suppressed', claimed_until = NULL, "
                "last_error = (SELECT 'suppressed: ' || s.reason FROM suppression s "
                "WHERE s.customer_id = message.customer_id) "
                "WHERE claimed_by = :token AND status = 'sending' "
                "AND customer_id IN (SELECT customer_id FROM suppression)"
            ),
            {"token": claimed_by},
        )
        # Unsubscribed from this message's topic, or from all marketing (store/events.py).
        connection.execute(
            text(
                "UPDATE message SET status = 'suppressed', claimed_until = NULL, "
                "last_error = 'suppressed: unsubscribed from ' || COALESCE(topic, 'marketing') "
                f"WHERE claimed_by = :token AND status = 'sending' AND {TOPIC_SUPPRESSED_SQL}"
            ),
            {"token": claimed_by},
        )
        if also:
            batch = connection.execute(
                text("SELECT DISTINCT customer_id FROM message WHERE claimed_by = :token"),
                {"token": claimed_by},
            ).scalars()
            listed = [c for c in batch if c in also]
            for start in range(0, len(listed), 500):
                chunk = listed[start : start + 500]
                marks = ", ".join(f":c{i}" for i in range(len(chunk)))
                connection.execute(
                    text(
                        "UPDATE message SET status = 'suppressed', claimed_until = NULL, "
                        "last_error = 'suppressed: in the do-not-contact file' "
                        f"WHERE claimed_by = :token AND status = 'sending' "
                        f"AND customer_id IN ({marks})"
                    ),
                    {"token": claimed_by, **{f"c{i}": c for i, c in enumerate(chunk)}},
                )
    return read_frame(
        engine,
        "SELECT id, campaign FROM message WHERE claimed_by = :token AND status = 'suppressed'",
        params={"token": claimed_by},
    )


def extend_lease(engine: Engine, claimed_by: str, until: datetime) -> int:
    """Push back the lease of the batch claimed as ``claimed_by``; return how many rows it holds."""
    with engine.begin() as connection:
        result = connection.execute(
            text(
                "UPDATE message SET claimed_until = :until "
                "WHERE claimed_by = :token AND status = 'sending'"
            ),
            {"until": time_param(until), "token": claimed_by},
        )
    return int(result.rowcount)


def has_deliverable(
    engine: Engine, channel: str, now: datetime, due_by: datetime | None = None
) -> bool:
    """Whether :func:`claim` would find anything for ``channel`` at ``now`` (and ``due_by``)."""
    with engine.connect() as connection:
        found = connection.execute(
            text(f"SELECT 1 FROM message WHERE {_DELIVERABLE} LIMIT 1"),
            {"channel": channel, "now": time_param(now), "due": time_param(due_by or now)},
        ).first()
    return found is not None


def mark_sent(
    engine: Engine,
    ids: list[int],
    destinations: list[str | None],
    at: datetime,
    claimed_by: str | None = None,
) -> None:
    """Mark messages sent, with where they went (one UPDATE per destination and id chunk).

    With ``claimed_by``, only messages still held under that claim are marked (a batch whose
    lease lapsed may belong to another worker now). ``claimed_by`` stays, recording which worker
    sent each message.
    """
    by_destination: dict[str | None, list[int]] = {}
    for message_id, destination in zip(ids, destinations, strict=True):
        by_destination.setdefault(destination, []).append(message_id)
    mine = " AND claimed_by = :token" if claimed_by is not None else ""
    with engine.begin() as connection:
        for destination, group in by_destination.items():
            for chunk in _id_chunks(group):
                connection.execute(
                    text(
                        "UPDATE message SET status = 'sent', sent_at = :at, destination = :dest, "
                        "claimed_until = NULL, last_error = NULL, next_attempt_at = NULL "
                        f"WHERE id IN ({chunk}){mine}"
                    ),
                    {"dest": destination, "at": time_param(at), "token": claimed_by},
                )


#: Ids per ``WHERE id IN (...)``; they are integers we read from the store, inlined safely.
_ID_CHUNK = 5_000


def _id_chunks(ids: list[int]) -> list[str]:
    return [
        ", ".join(str(int(i)) for i in ids[start : start + _ID_CHUNK])
        for start in range(0, len(ids), _ID_CHUNK)
    ]


def mark_failed(engine: Engine, ids: list[int], errors: list[str]) -> None:
    """Mark messages failed for good with their error; they leave delivery."""
    _set_status(engine, "failed", ids, errors)


def mark_retry(
    engine: Engine,
    ids: list[int],
    errors: list[str],
    retry_at: list[datetime],
    failed_at: datetime | None = None,
) -> None:
    """Queue messages again after a transient error, to be claimed from ``retry_at`` on.

    ``failed_at`` (default: the first retry time) is kept as ``first_failed_at`` on a message's
    first failure: retries go on until the channel's ``retry_for`` has passed since then.
    """
    if not ids:
        return
    with engine.begin() as connection:
        connection.execute(
            text(
                "UPDATE message SET status = 'queued', last_error = :err, next_attempt_at = :next, "
                "first_failed_at = COALESCE(first_failed_at, :failed), "
                "claimed_by = NULL, claimed_until = NULL WHERE id = :id AND status = 'sending'"
            ),
            [
                {
                    "id": i,
                    "err": e,
                    "next": time_param(t),
                    "failed": time_param(failed_at or t),
                }
                for i, e, t in zip(ids, errors, retry_at, strict=True)
            ],
        )


def requeue(engine: Engine, statuses: Collection[str], campaign: str | None = None) -> int:
    """Put messages in ``statuses`` (failed, suppressed) back in the queue; return how many.

    Their attempts, retry clock and error start afresh; the send-time check still applies, so a
    customer who is suppressed stays unsent. Messages that failed to render (status
    ``render_failed``) are never requeued: they have no body, and would fail again.
    """
    if NOT_REQUEUEABLE & set(statuses):
        raise ValueError(f"cannot requeue messages in {sorted(NOT_REQUEUEABLE & set(statuses))}")
    marks = ", ".join(f":s{i}" for i in range(len(statuses)))
    only = " AND campaign = :campaign" if campaign is not None else ""
    with engine.begin() as connection:
        result = connection.execute(
            text(
                "UPDATE message SET status = 'queued', attempts = 0, last_error = NULL, "
                "next_attempt_at = NULL, first_failed_at = NULL, claimed_by = NULL, "
                f"claimed_until = NULL WHERE status IN ({marks}){only}"
            ),
            {"campaign": campaign, **{f"s{i}": s for i, s in enumerate(statuses)}},
        )
    return int(result.rowcount)


def held_claims(engine: Engine, now: datetime) -> pd.DataFrame:
    """Messages sending under a lease that has not lapsed: ``claimed_by``, count, lease end."""
    return read_frame(
        engine,
        "SELECT claimed_by, COUNT(*) AS messages, MAX(claimed_until) AS until FROM message "
        "WHERE status = 'sending' AND claimed_until >= :now GROUP BY claimed_by",
        params={"now": time_param(now)},
        datetime_columns=["until"],
    )


def release_claims(engine: Engine, claimed_by: Collection[str], now: datetime) -> int:
    """End the leases of these claims now (their worker is known to be dead); return messages."""
    released = 0
    with engine.begin() as connection:
        for token in claimed_by:
            result = connection.execute(
                text(
                    "UPDATE message SET claimed_until = :past WHERE claimed_by = :token "
                    "AND status = 'sending'"
                ),
                {"token": token, "past": time_param(now - timedelta(seconds=1))},
            )
            released += int(result.rowcount)
    return released


def mark_bounced(engine: Engine, ids: list[int], errors: list[str], at: datetime) -> int:
    """Mark messages bounced and suppress their customers; return how many were newly suppressed.

    A bounce is the receiving server refusing the address for good (SMTP 5xx on the recipient):
    later runs leave the customer out, as the planner skips suppressed customers.
    """
    if not ids:
        return 0
    _set_status(engine, "bounced", ids, errors)
    reasons = dict(zip(ids, errors, strict=True))
    with engine.begin() as connection:
        before = int(connection.execute(text("SELECT COUNT(*) FROM suppression")).scalar_one())
        for chunk in _id_chunks(ids):
            rows = connection.execute(
                text(f"SELECT id, customer_id FROM message WHERE id IN ({chunk})")
            ).all()
            connection.execute(
                text(
                    "INSERT INTO suppression (customer_id, reason, created_at) "
                    "VALUES (:c, :r, :at) ON CONFLICT (customer_id) DO NOTHING"
                ),
                [
                    {"c": customer, "r": f"bounced: {reasons[int(i)]}"[:500], "at": time_param(at)}
                    for i, customer in rows
                ],
            )
        after = int(connection.execute(text("SELECT COUNT(*) FROM suppression")).scalar_one())
    return after - before


def _set_status(engine: Engine, status: str, ids: list[int], errors: list[str]) -> None:
    if not ids:
        return
    with engine.begin() as connection:
        connection.execute(
            text(
                "UPDATE message SET status = :status, last_error = :err, next_attempt_at = NULL, "
                "claimed_until = NULL WHERE id = :id"
            ),
            [{"id": i, "err": e, "status": status} for i, e in zip(ids, errors, strict=True)],
        )


def recent_errors(engine: Engine, limit: int = 5) -> pd.DataFrame:
    """The latest messages with an error: failed, bounced, or queued for a retry."""
    return read_frame(
        engine,
        "SELECT id, campaign, customer_id, recipient, channel, status, attempts, last_error "
        "FROM message WHERE last_error IS NOT NULL AND status <> 'sent' "
        "ORDER BY id DESC LIMIT :limit",
        params={"limit": limit},
    )


def counts_by_status(engine: Engine) -> dict[str, int]:
    """How many outbox messages are in each state."""
    frame = read_frame(engine, "SELECT status, COUNT(*) AS n FROM message GROUP BY status")
    return {str(s): int(n) for s, n in zip(frame["status"], frame["n"], strict=True)}


def holds_windows_from(engine: Engine, campaign: str, first: str) -> bool:
    """Whether the outbox holds a message of ``campaign`` for a trigger window at or after
    ``first`` (schedule windows are ``YYYY-MM-DDTHH:MMZ``, which sort as times do): one query,
    for a forecast to tell whether a real run has already planned a window of its horizon."""
    frame = read_frame(
        engine,
        'SELECT 1 AS found FROM message WHERE campaign = :c AND "window" >= :w LIMIT 1',
        params={"c": campaign, "w": first},
    )
    return not frame.empty
