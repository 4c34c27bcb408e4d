"""Engines from a URL, and opening a store (created or migrated to this version's schema)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, create_engine

from store.errors import StoreError
from store.migrate import ensure_current, safe_url
from store.tables import Meta

_SQLITE_PREFIX = "sqlite:///"


def resolve_url(url: str, root: Path) -> str:
    """Make a relative SQLite path absolute against ``root`` (the config file's folder)."""
    if url.startswith(_SQLITE_PREFIX) and url != "sqlite:///:memory:":
        path = Path(url.removeprefix(_SQLITE_PREFIX))
        if not path.is_absolute():
            path = root / path
        return _SQLITE_PREFIX + str(path)
    if url.startswith("postgresql://"):
        # SQLAlchemy's bare postgresql:// means psycopg2; we ship psycopg 3.
        return "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return url


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # The busy timeout makes a second writer wait instead of failing at once; it comes first,
    # because switching a new database to WAL takes a lock too (four first runs at once waited
    # only sqlite3's default 5 s for it). WAL lets readers (campaign status) work while a run
    # writes.
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def connect(url: str, root: Path | None = None) -> Engine:
    """Create an engine for ``url``; a SQLite file's folder is created when missing."""
    url = resolve_url(url, root or Path.cwd())
    if url.startswith(_SQLITE_PREFIX) and url != "sqlite:///:memory:":
        Path(url.removeprefix(_SQLITE_PREFIX)).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def open_store(url: str, root: Path | None = None) -> Engine:
    """Connect, and bring the store to this version's schema (see :mod:`store.migrate`).

    A new database is created; a store behind this version gets its pending migrations when they
    only add; any other store is refused with a :class:`StoreError` that says what to do.
    """
    engine = connect(url, root)
    try:
        ensure_current(engine)
    except OperationalError as exc:
        engine.dispose()
        raise StoreError(f"cannot open the store at {safe_url(url)}: {exc.orig}") from None
    except BaseException:
        engine.dispose()
        raise
    return engine


@contextmanager
def opened_store(url: str, root: Path | None = None) -> Iterator[Engine]:
    """:func:`open_store` for a ``with`` block: the engine's connections close at its end."""
    engine = open_store(url, root)
    try:
        yield engine
    finally:
        engine.dispose()


def get_meta(engine: Engine, key: str) -> str | None:
    """Read one value from the store's meta table."""
    with Session(engine) as session:
        row = session.get(Meta, key)
        return row.value if row is not None else None


def set_meta(engine: Engine, key: str, value: str) -> None:
    """Write one value to the store's meta table."""
    with Session(engine) as session:
        session.merge(Meta(key=key, value=value))
        session.commit()
