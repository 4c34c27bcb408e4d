"""Schema migrations: bring a store to this version's schema, keeping every row.

The schema's history is the Alembic revisions in ``store/migrations/versions``; a store records the
revision it is at in ``alembic_version`` (and, for older versions of campaign to refuse it, in
``meta.schema_version``). Three kinds of store arrive here:

- an empty database: every revision runs, creating the tables;
- a store written by release 0.1.0 (``meta.schema_version`` 2, no ``alembic_version``): it is
  stamped at revision 0001, which is exactly that schema, and upgraded from there;
- a store at an older revision: the pending revisions run.

:func:`ensure_current`, called whenever a command opens the store, applies pending revisions only
when every one of them is ``online_safe`` (it only adds); otherwise it refuses, naming them, and
``campaign migrate`` (:func:`upgrade`) applies them. A store at a revision this version does not
know (written by a newer campaign) is refused.

Every pending revision runs in one transaction that holds a lock, so concurrent first runs on a new
database create it once: on PostgreSQL a transaction-scoped advisory lock; on SQLite an ``flock``
on a file beside the database (waited for without a time limit), then ``BEGIN IMMEDIATE``. A crash
midway leaves the store at its previous revision.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, MetaData, inspect, text

from store.errors import StoreError

_SCRIPTS = Path(__file__).with_name("migrations")
#: The revision that is release 0.1.0's schema, and the ``meta.schema_version`` 0.1.0 wrote.
BASELINE, LEGACY_SCHEMA_VERSION = "0001", "2"
#: The advisory lock's key for migrations on PostgreSQL ("migrate" in ASCII).
_ADVISORY_KEY = 0x6D696772617465


@dataclass(frozen=True)
class Revision:
    """One migration: its id, its one-line description, and whether a run may apply it."""

    id: str
    title: str
    online_safe: bool


@dataclass(frozen=True)
class MigrationState:
    """Where a store stands: its revision (None when empty), the newest one, what is pending."""

    current: str | None
    head: str
    pending: tuple[Revision, ...]
    #: Written by release 0.1.0, before migrations (it is stamped at the baseline on upgrade).
    legacy: bool = False

    @property
    def up_to_date(self) -> bool:
        """At the newest revision, and recorded as such (a 0.1.0 store still needs its stamp)."""
        return not self.pending and not self.legacy


def _config() -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", str(_SCRIPTS))
    return config


def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(_config())


def head() -> str:
    """The newest revision this version of campaign knows."""
    found = _scripts().get_current_head()
    assert found is not None
    return found


def _revision(script: ScriptDirectory, rev: str) -> Revision:
    found = script.get_revision(rev)
    assert found is not None
    title = (found.doc or "").strip().splitlines()[0] if found.doc else rev
    return Revision(found.revision, title, bool(getattr(found.module, "online_safe", False)))


def _state(connection: Connection) -> MigrationState:
    script = _scripts()
    newest = head()
    tables = set(inspect(connection).get_table_names())
    legacy = False
    current: str | None
    if "alembic_version" in tables:
        current = MigrationContext.configure(connection).get_current_revision()
    elif "meta" in tables:
        row = connection.execute(
            text("SELECT value FROM meta WHERE key = 'schema_version'")
        ).first()
        found = row[0] if row is not None else "none"
        if found != LEGACY_SCHEMA_VERSION:
            raise StoreError(
                f"the store at {safe_url(str(connection.engine.url))} has schema version {found}, "
                "written by a version of campaign older than 0.1.0 that cannot be migrated; point "
                "[store] url at a new database and load your data again"
            )
        current, legacy = BASELINE, True
    else:
        current = None
    if current is not None and current not in {s.revision for s in script.walk_revisions()}:
        raise StoreError(
            f"the store at {safe_url(str(connection.engine.url))} is at schema revision "
            f"{current}, which this version of campaign does not know (it knows up to {newest}): "
            "it was written by a newer campaign; upgrade campaign"
        )
    if current == newest:
        return MigrationState(current, newest, (), legacy)
    ids = [s.revision for s in script.iterate_revisions(newest, current or "base")]
    return MigrationState(
        current, newest, tuple(_revision(script, r) for r in reversed(ids)), legacy
    )


def state(engine: Engine) -> MigrationState:
    """Where the store stands (reads only)."""
    with engine.connect() as connection:
        return _state(connection)


def ensure_current(engine: Engine) -> MigrationState:
    """Create a new store, or apply pending migrations that are all online-safe; else refuse.

    Returns the state the store was found in.
    """
    found = state(engine)
    if found.up_to_date:
        return found
    if found.current is not None and not all(r.online_safe for r in found.pending):
        names = ", ".join(f"{r.id} ({r.title})" for r in found.pending if not r.online_safe)
        raise StoreError(
            f"the store at {safe_url(str(engine.url))} needs migrations that change existing "
            f"data: {names}; back it up, then run `campaign migrate`"
        )
    upgrade(engine)
    return found


def upgrade(engine: Engine, target: str = "head") -> tuple[Revision, ...]:
    """Apply every pending migration (up to ``target``) in one locked transaction.

    Returns the revisions applied.
    """
    with _locked(engine) as connection:
        # Read again under the lock: another process may have migrated while we waited.
        found = _state(connection)
        if found.up_to_date:
            return ()
        if found.legacy:
            MigrationContext.configure(connection).stamp(_scripts(), BASELINE)
        config = _config()
        config.attributes["connection"] = connection
        command.upgrade(config, target)
        reached = MigrationContext.configure(connection).get_current_revision()
        # Older versions of campaign compare this with their own schema version and refuse.
        connection.execute(text("DELETE FROM meta WHERE key = 'schema_version'"))
        connection.execute(
            text("INSERT INTO meta (key, value) VALUES ('schema_version', :v)"),
            {"v": f"revision {reached}"},
        )
        connection.commit()
        ids = [r.id for r in found.pending]
        return found.pending[: ids.index(reached) + 1] if reached in ids else ()


@contextmanager
def _locked(engine: Engine) -> Iterator[Connection]:
    """A connection inside a transaction that holds the store's migration lock."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _ADVISORY_KEY})
            yield connection
        return
    database = engine.url.database
    with _file_lock(database), engine.connect() as connection:
        # pysqlite starts transactions lazily and not before DDL; take the write lock now, so
        # that every statement below, DDL included, is in this one transaction.
        connection.exec_driver_sql("BEGIN IMMEDIATE")
        yield connection


@contextmanager
def _file_lock(database: str | None) -> Iterator[None]:
    if not database or database == ":memory:":
        yield
        return
    with open(f"{database}.migratelock", "a+", encoding="utf-8") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)  # waits; the kernel releases it on death
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def drop_everything(engine: Engine) -> None:
    """Drop every table (and, on PostgreSQL, function) of the store, migrations included.

    For tests and benchmarks that reuse a database.
    """
    if engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            connection.execute(text("DROP SCHEMA public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
        return
    metadata = MetaData()
    metadata.reflect(engine)
    metadata.drop_all(engine)


def safe_url(url: str) -> str:
    """The URL without its password, for messages."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        credentials, host = rest.rsplit("@", 1)
        user = credentials.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}"
    return url
