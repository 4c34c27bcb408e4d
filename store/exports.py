"""Two-phase file exports: a file's messages are recorded before the file is renamed into place.

The invariant: a message is exported in exactly one published file. The steps of one file:

1. the channel writes the messages to a temporary file (flushed to disk);
2. :func:`record` marks them ``exporting`` under the file's own token and inserts an
   ``export_batch`` row (``prepared``, with both paths), in one transaction;
3. the channel renames the temporary file to its final name;
4. :func:`finish` marks the messages sent and the batch ``done``, in one transaction.

A process killed before 2 leaves claimed messages whose lease lapses (they are claimed again; the
orphan temporary file is removed later). Killed between 2 and 4, it leaves a ``prepared`` batch
whose messages no claim can take (``exporting`` is not claimable): :func:`unfinished` finds it once
its lease has lapsed, and the drain finishes it (renaming the file if that had not happened yet)
or, when neither file exists, :func:`roll_back` returns its messages to the queue. Recovery of one
batch holds its row (``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite's single writer), so two
workers never recover the same batch.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine, text

from store.bulk import time_param


@dataclass(frozen=True)
class PreparedFile:
    """An export recorded in the store and not yet finished."""

    token: str
    campaign: str
    path: str
    temp_path: str
    messages: int


def record(
    engine: Engine,
    claimed_by: str,
    files: list[PreparedFile],
    now: datetime,
    lease: timedelta,
    channel: str,
) -> None:
    """Step 2: give each file's messages (by campaign, within the claim) the file's token."""
    with engine.begin() as connection:
        for prepared in files:
            moved = connection.execute(
                text(
                    "UPDATE message SET status = 'exporting', claimed_by = :file, "
                    "claimed_until = :until WHERE claimed_by = :token AND status = 'sending' "
                    "AND campaign = :campaign"
                ),
                {
                    "file": prepared.token,
                    "token": claimed_by,
                    "campaign": prepared.campaign,
                    "until": time_param(now + lease),
                },
            ).rowcount
            if moved != prepared.messages:
                # The lease lapsed and another worker claimed some of them: publish nothing.
                raise LostClaim(
                    f"{prepared.messages - int(moved)} of the {prepared.messages} messages of "
                    f"{prepared.path} are no longer held by {claimed_by}"
                )
            connection.execute(
                text(
                    "INSERT INTO export_batch (channel, token, path, temp_path, messages, status, "
                    "created_at, claimed_until) VALUES (:channel, :token, :path, :temp, :n, "
                    "'prepared', :now, :until)"
                ),
                {
                    "channel": channel,
                    "token": prepared.token,
                    "path": prepared.path,
                    "temp": prepared.temp_path,
                    "n": prepared.messages,
                    "now": time_param(now),
                    "until": time_param(now + lease),
                },
            )


class LostClaim(Exception):
    """A batch's lease lapsed before its file was recorded (nothing was published)."""


def finish(engine: Engine, token: str, now: datetime) -> int:
    """Step 4: the file is in place; mark its messages sent. Returns how many."""
    with engine.begin() as connection:
        return _finish(connection, token, now)


def _finish(connection: Connection, token: str, now: datetime) -> int:
    path = connection.execute(
        text("SELECT path FROM export_batch WHERE token = :token"), {"token": token}
    ).scalar_one()
    sent = connection.execute(
        text(
            "UPDATE message SET status = 'sent', sent_at = :at, destination = :path, "
            "claimed_until = NULL, last_error = NULL, next_attempt_at = NULL "
            "WHERE claimed_by = :token AND status = 'exporting'"
        ),
        {"token": token, "at": time_param(now), "path": path},
    ).rowcount
    connection.execute(
        text(
            "UPDATE export_batch SET status = 'done', finished_at = :at, claimed_until = NULL "
            "WHERE token = :token"
        ),
        {"token": token, "at": time_param(now)},
    )
    return int(sent)


def _roll_back(connection: Connection, token: str, now: datetime) -> int:
    returned = connection.execute(
        text(
            "UPDATE message SET status = 'queued', claimed_by = NULL, claimed_until = NULL "
            "WHERE claimed_by = :token AND status = 'exporting'"
        ),
        {"token": token},
    ).rowcount
    connection.execute(
        text(
            "UPDATE export_batch SET status = 'rolled_back', finished_at = :at, "
            "claimed_until = NULL WHERE token = :token"
        ),
        {"token": token, "at": time_param(now)},
    )
    return int(returned)


def unfinished(engine: Engine, channel: str, now: datetime) -> list[PreparedFile]:
    """Prepared batches of ``channel`` whose lease has lapsed (their worker died)."""
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT b.token, b.path, b.temp_path, b.messages, "
                "(SELECT MIN(m.campaign) FROM message m WHERE m.claimed_by = b.token) "
                "FROM export_batch b WHERE b.channel = :channel AND b.status = 'prepared' "
                "AND b.claimed_until < :now ORDER BY b.id"
            ),
            {"channel": channel, "now": time_param(now)},
        ).all()
    return [
        PreparedFile(token, campaign or "", path, temp, int(n))
        for token, path, temp, n, campaign in rows
    ]


@contextmanager
def recovering(engine: Engine, token: str, now: datetime) -> Iterator[Recovery | None]:
    """Hold one unfinished batch for recovery; None when another worker has it or it is done.

    The caller publishes the file if it can, then calls :meth:`Recovery.finish` or
    :meth:`Recovery.roll_back`; everything commits when the block ends.
    """
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            connection.exec_driver_sql("BEGIN IMMEDIATE")
            lock = ""
        else:
            lock = " FOR UPDATE SKIP LOCKED"
        held = connection.execute(
            text(
                "SELECT token FROM export_batch WHERE token = :token AND status = 'prepared' "
                f"AND claimed_until < :now{lock}"
            ),
            {"token": token, "now": time_param(now)},
        ).first()
        if held is None:
            connection.rollback()
            yield None
            return
        recovery = Recovery(connection, token, now)
        yield recovery
        connection.commit()


class Recovery:
    """An unfinished batch held by this worker (see :func:`recovering`)."""

    def __init__(self, connection: Connection, token: str, now: datetime) -> None:
        self._connection, self.token, self._now = connection, token, now
        self.outcome: str | None = None
        self.messages = 0

    def runs(self) -> dict[int, int]:
        """How many of its messages each run queued."""
        rows = self._connection.execute(
            text(
                "SELECT run_id, COUNT(*) FROM message WHERE claimed_by = :token "
                "AND status = 'exporting' GROUP BY run_id"
            ),
            {"token": self.token},
        ).all()
        return {int(run): int(n) for run, n in rows}

    def finish(self) -> None:
        """Its file is in place: mark its messages sent."""
        self.messages = _finish(self._connection, self.token, self._now)
        self.outcome = "finished"

    def roll_back(self) -> None:
        """Its file never reached its place: return its messages to the queue."""
        self.messages = _roll_back(self._connection, self.token, self._now)
        self.outcome = "rolled back"


def temp_paths_in_flight(engine: Engine) -> set[str]:
    """Temporary files that a prepared batch still refers to (not orphans)."""
    with engine.connect() as connection:
        return set(
            connection.execute(
                text("SELECT temp_path FROM export_batch WHERE status = 'prepared'")
            ).scalars()
        )
