"""The run lock: one ``campaign run`` plans and writes the outbox at a time.

SQLite: an exclusive ``flock`` on a file beside the database, taken without waiting, so a second
run stops at once with :class:`RunLockedError` saying who holds it. The kernel drops the lock when
its process dies, even by SIGKILL, so a crash never leaves a stale lock behind.

PostgreSQL: a session advisory lock, waited for: a second run starts once the first has finished
(and then finds its windows planned). Delivery itself needs no lock there: workers claim disjoint
batches with ``FOR UPDATE SKIP LOCKED``.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine, text

from store.errors import RunLockedError

#: The advisory lock's key on PostgreSQL (any constant; "campaign" in ASCII).
_ADVISORY_KEY = 0x63616D706169676E


@contextmanager
def run_lock(engine: Engine) -> Iterator[None]:
    """Hold the store's run lock for the ``with`` block."""
    if engine.dialect.name == "postgresql":
        with _advisory_lock(engine):
            yield
        return
    database = engine.url.database
    if not database or database == ":memory:":
        yield
        return
    with _file_lock(Path(f"{database}.runlock")):
        yield


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    handle = open(path, "a+", encoding="utf-8")  # noqa: SIM115 - held for the whole block
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise RunLockedError(
                f"another campaign run ({holder}) is using the store {path.with_suffix('')}; "
                "wait for it to finish, then run again"
            ) from None
        started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}, started {started}")
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            handle.flush()
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    finally:
        handle.close()


@contextmanager
def _advisory_lock(engine: Engine) -> Iterator[None]:
    with engine.connect() as connection:
        connection.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _ADVISORY_KEY})
        connection.commit()
        try:
            yield
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _ADVISORY_KEY})
            connection.commit()
