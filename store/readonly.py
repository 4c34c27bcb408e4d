"""Reading the store through the plain DB-API, for commands that only look (``campaign status``).

No SQLAlchemy and no pandas: ``status`` answers in a fraction of a second. SQLite is opened
read-only with the standard library's ``sqlite3``; PostgreSQL with ``psycopg``. The SQL here is
the portable subset both understand; parameters are written ``?`` and converted for psycopg.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

_SQLITE_PREFIX = "sqlite:///"


class StoreReadError(Exception):
    """The store exists but cannot be read (a damaged file, an unreachable server)."""


@dataclass
class Reader:
    """A DB-API connection and how it writes parameters."""

    connection: Any
    dialect: str

    def time(self, value: datetime) -> Any:
        """A naive UTC time as a parameter: SQLite compares the text form it stores times in."""
        return value.strftime("%Y-%m-%d %H:%M:%S.%f") if self.dialect == "sqlite" else value

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Run ``sql`` (parameters as ``?``) and return the rows as dicts."""
        if self.dialect == "postgresql":
            sql = sql.replace("?", "%s")
        cursor = self.connection.cursor()
        try:
            cursor.execute(sql, tuple(params))
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        finally:
            cursor.close()


def sqlite_file(url: str, root: Path) -> Path | None:
    """The database file of a ``sqlite:///`` URL (relative to ``root``), or None for others."""
    if not url.startswith(_SQLITE_PREFIX) or url == "sqlite:///:memory:":
        return None
    path = Path(url.removeprefix(_SQLITE_PREFIX))
    return path if path.is_absolute() else root / path


@contextmanager
def reading(url: str, root: Path) -> Iterator[Reader | None]:
    """A read-only :class:`Reader` on the store at ``url``, or None when there is no store yet."""
    path = sqlite_file(url, root)
    try:
        if path is not None:
            if not path.exists():
                yield None
                return
            connection: Any = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
            connection.execute("PRAGMA busy_timeout=30000")
            dialect = "sqlite"
        else:
            import psycopg

            connection = psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"))
            connection.read_only = True
            dialect = "postgresql"
    except Exception as exc:  # sqlite3.Error, psycopg.Error: both are "cannot open"
        raise StoreReadError(f"cannot open the store: {exc}") from None
    try:
        reader = Reader(connection, dialect)
        if not _has_table(reader, "meta"):
            yield None
            return
        yield reader
    except sqlite3.Error as exc:
        raise StoreReadError(f"cannot read the store: {exc}") from None
    finally:
        connection.close()


def _has_table(reader: Reader, name: str) -> bool:
    if reader.dialect == "sqlite":
        sql = "SELECT name FROM sqlite_master WHERE type = 'table' AND name = ?"
    else:
        sql = (
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND tablename = ?"
        )
    return bool(reader.rows(sql, (name,)))


def stored_time(value: Any) -> datetime | None:
    """A time as the store returns it (SQLite: text; PostgreSQL: datetime) as naive UTC."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if isinstance(value, datetime) and value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    assert isinstance(value, datetime)
    return value


def stored_json(value: Any) -> Any:
    """A JSON column as the store returns it (SQLite: text; PostgreSQL: decoded)."""
    return json.loads(value) if isinstance(value, str | bytes) else value


def message_counts(
    reader: Reader, now: datetime, run_ids: Sequence[int] | None = None
) -> list[dict[str, Any]]:
    """Outbox rows counted by run, campaign, segment and status; ``deferred`` marks queued rows
    waiting past ``now`` with no error (quiet hours), with their first and last send-after time.

    Every run's rows, or only those of ``run_ids``.
    """
    where = ""
    params: list[Any] = [reader.time(now)]
    if run_ids is not None:
        if not run_ids:
            return []
        where = f"WHERE run_id IN ({', '.join('?' for _ in run_ids)})"
        params.extend(int(i) for i in run_ids)
    rows = reader.rows(
        "SELECT run_id, campaign, segment_id, status, deferred, COUNT(*) AS n, "
        "MIN(next_attempt_at) AS first_attempt_at, MAX(next_attempt_at) AS last_attempt_at "
        "FROM (SELECT run_id, campaign, segment_id, status, next_attempt_at, "
        "CASE WHEN status = 'queued' AND last_error IS NULL AND next_attempt_at > ? "
        f"THEN 1 ELSE 0 END AS deferred FROM message {where}) AS m "
        "GROUP BY run_id, campaign, segment_id, status, deferred "
        "ORDER BY run_id, campaign, segment_id, status, deferred",
        params,
    )
    for row in rows:
        if row["deferred"]:
            row["first_attempt_at"] = stored_time(row["first_attempt_at"])
            row["last_attempt_at"] = stored_time(row["last_attempt_at"])
        else:
            row["first_attempt_at"] = row["last_attempt_at"] = None
    return rows
