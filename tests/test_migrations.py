"""Schema migrations: a new store is built by them, a store written by release 0.1.0 is upgraded
keeping every row, concurrent first runs create the store once, and stores that cannot be used
are refused with a sentence that says what to do.

The 0.1.0 stores in tests/data were written by the code tagged v0.1.0 (``campaign run`` twice,
``experiment simulate``, ``track clicks`` and ``conversions``, ``experiment promote``, an uplift
model and an unsubscribe), dumped with sqlite3's ``iterdump`` and with
``pg_dump --column-inserts --no-owner --no-privileges``.
"""

from __future__ import annotations

import gzip
import multiprocessing
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from click.testing import CliRunner
from sqlalchemy import Engine, inspect, text
from sqlmodel import SQLModel

import store.migrate
from cli.main import cli
from store.engine import connect, open_store
from store.errors import StoreError
from store.migrate import drop_everything, head, state, upgrade

DATA = Path(__file__).parent / "data"
#: Tables of release 0.1.0 and a column that orders each one's rows.
RELEASE_TABLES = {
    "campaign_run": "id",
    "campaign_window": "id",
    "conversion": "id",
    "customer": "customer_id",
    "customer_event": "id",
    "experiment_decision": "id",
    "exposure": "id",
    "exposure_count": "experiment, variant, day",
    "message": "id",
    "personalization_model": "id",
    "product": "product_id",
    "segment_event": "id",
    "segment_membership": "customer_id",
    "segment_model": "version",
    "suppression": "customer_id",
    "transaction_line": "id",
}


def schema_differences(engine: Engine) -> list[Any]:
    with engine.connect() as connection:
        return list(compare_metadata(MigrationContext.configure(connection), SQLModel.metadata))


def rows(engine: Engine, table: str, columns: list[str]) -> list[tuple[Any, ...]]:
    names = ", ".join(f'"{c}"' for c in columns)
    with engine.connect() as connection:
        return [
            tuple(r)
            for r in connection.execute(
                text(f"SELECT {names} FROM {table} ORDER BY {RELEASE_TABLES[table]}")
            )
        ]


def snapshot(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every 0.1.0 table, in the columns 0.1.0 had."""
    found = inspect(engine)
    return {
        table: rows(engine, table, [c["name"] for c in found.get_columns(table)])
        for table in RELEASE_TABLES
    }


def release_store_sqlite(path: Path) -> str:
    dump = gzip.decompress((DATA / "store-v0.1.0.sqlite.sql.gz").read_bytes()).decode()
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(path)
    connection.executescript(dump)
    connection.close()
    return f"sqlite:///{path}"


def release_store_postgresql(url: str) -> str:
    engine = connect(url)
    drop_everything(engine)
    dump = gzip.decompress((DATA / "store-v0.1.0.postgresql.sql.gz").read_bytes()).decode()
    # psql meta-commands (\restrict) are not SQL.
    script = "\n".join(line for line in dump.splitlines() if not line.startswith("\\"))
    raw = engine.raw_connection()
    try:
        raw.cursor().execute(script)
        raw.commit()
    finally:
        raw.close()
    engine.dispose()
    return url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def release_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a store written by release 0.1.0, on each backend."""
    if request.param == "sqlite":
        yield release_store_sqlite(tmp_path / "store.db")
        return
    url: str = request.getfixturevalue("postgres_url")
    yield release_store_postgresql(url)
    engine = connect(url)
    drop_everything(engine)
    engine.dispose()


def test_a_new_store_is_built_by_the_migrations_and_matches_the_tables(fresh_store: Engine) -> None:
    assert schema_differences(fresh_store) == []
    found = state(fresh_store)
    assert (found.current, found.pending, found.legacy) == (head(), (), False)
    with fresh_store.connect() as connection:
        version = connection.execute(
            text("SELECT value FROM meta WHERE key = 'schema_version'")
        ).scalar_one()
    # Release 0.1.0 compares this with its own "2" and refuses the store.
    assert version == f"revision {head()}"


def test_a_release_0_1_0_store_keeps_every_row(release_store: str) -> None:
    engine = connect(release_store)
    before = snapshot(engine)
    assert len(before["customer"]) == 150
    assert len(before["message"]) == 300
    assert len(before["transaction_line"]) == 1859
    assert all(before[t] for t in RELEASE_TABLES), "the fixture should fill every table"
    found = state(engine)
    assert found.legacy
    assert found.current == "0001"
    engine.dispose()

    # Opening the store (as every command does) applies the online-safe migrations.
    engine = open_store(release_store)
    try:
        assert state(engine).up_to_date
        assert schema_differences(engine) == []
        assert snapshot_of(engine, before) == before
        with engine.connect() as connection:
            revision = connection.execute(text("SELECT version_num FROM alembic_version")).all()
        assert revision == [(head(),)]
    finally:
        engine.dispose()


def snapshot_of(engine: Engine, like: dict[str, list[tuple[Any, ...]]]) -> dict[str, Any]:
    """The same tables and columns as ``like``, read from ``engine`` (new columns left out)."""
    old = inspect(engine)
    result = {}
    for table in like:
        names = [c["name"] for c in old.get_columns(table)]
        result[table] = rows(engine, table, names[: len(like[table][0])] if like[table] else names)
    return result


def test_campaign_migrate_upgrades_a_release_store_and_says_so(tmp_path: Path) -> None:
    url = release_store_sqlite(tmp_path / ".campaign" / "campaign.db")
    (tmp_path / "config.toml").write_text(
        f'[store]\nurl = "{url}"\n[source]\ntype = "demo"\n'
        '[channels.export]\ntype = "file"\ndirectory = "out"\n'
    )
    runner = CliRunner()
    checked = runner.invoke(cli, ["migrate", "--check", "-c", str(tmp_path / "config.toml")])
    assert checked.exit_code == 1, checked.output
    listed = "".join(f"  {r.id}  {r.title}\n" for r in state(connect(url)).pending)
    assert checked.output == (
        "The store is at revision 0001 (written by release 0.1.0); "
        f"{len(state(connect(url)).pending)} migration(s) pending:\n{listed}"
    )
    done = runner.invoke(cli, ["migrate", "-c", str(tmp_path / "config.toml")])
    assert done.exit_code == 0, done.output
    assert done.output == (
        f"Migrated the store from revision 0001 (written by release 0.1.0) to revision {head()}:\n"
        f"{listed}"
    )
    again = runner.invoke(cli, ["migrate", "-c", str(tmp_path / "config.toml")])
    assert again.output == f"The store is up to date (revision {head()}).\n"


def _open(url: str) -> str:
    engine = open_store(url)
    engine.dispose()
    return "ok"


def test_four_first_runs_at_once_create_the_store_once(store_url: str) -> None:
    # Four processes open a new database at the same moment; all succeed, one creates it.
    context = multiprocessing.get_context("fork")
    with context.Pool(4) as pool:
        assert pool.map(_open, [store_url] * 4) == ["ok"] * 4
    engine = connect(store_url)
    try:
        with engine.connect() as connection:
            assert connection.execute(text("SELECT COUNT(*) FROM alembic_version")).scalar() == 1
        assert schema_differences(engine) == []
    finally:
        engine.dispose()


def test_a_store_older_than_release_0_1_0_is_refused(store_url: str) -> None:
    engine = connect(store_url)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE meta (key VARCHAR PRIMARY KEY, value VARCHAR)"))
        connection.execute(text("INSERT INTO meta VALUES ('schema_version', '1')"))
    engine.dispose()
    with pytest.raises(StoreError) as caught:
        open_store(store_url)
    assert str(caught.value).endswith(
        "has schema version 1, written by a version of campaign older than 0.1.0 that cannot be "
        "migrated; point [store] url at a new database and load your data again"
    )


def test_a_store_written_by_a_newer_campaign_is_refused(store_url: str) -> None:
    engine = open_store(store_url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    with pytest.raises(StoreError) as caught:
        open_store(store_url)
    assert str(caught.value).endswith(
        f"is at schema revision 9999, which this version of campaign does not know (it knows up "
        f"to {head()}): it was written by a newer campaign; upgrade campaign"
    )


UNSAFE = '''"""Rewrite every customer's email in lower case.

Revision ID: {rev}
Revises: {down}
"""

from alembic import op

revision = "{rev}"
down_revision = "{down}"
branch_labels = None
depends_on = None
online_safe = False


def upgrade() -> None:
    op.execute("UPDATE customer SET email = lower(email)")


def downgrade() -> None:
    pass
'''


def test_a_migration_that_changes_data_waits_for_campaign_migrate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A copy of the real migrations plus one that rewrites data (not online-safe).
    scripts = tmp_path / "migrations"
    shutil.copytree(store.migrate._SCRIPTS, scripts)
    current = head()
    rev = f"{int(current) + 1:04d}"
    (scripts / "versions" / f"v{rev}_lower_emails.py").write_text(
        UNSAFE.format(rev=rev, down=current)
    )
    url = f"sqlite:///{tmp_path / 'store.db'}"
    open_store(url).dispose()  # at the real head
    monkeypatch.setattr(store.migrate, "_SCRIPTS", scripts)
    with pytest.raises(StoreError) as caught:
        open_store(url)
    assert str(caught.value).endswith(
        f"needs migrations that change existing data: {rev} (Rewrite every customer's email in "
        "lower case.); back it up, then run `campaign migrate`"
    )
    engine = connect(url)
    assert [r.id for r in upgrade(engine)] == [rev]
    assert state(engine).up_to_date
    engine.dispose()
