"""``campaign migrate``: bring the configured store to this version's schema, under the run lock."""

from __future__ import annotations

from dataclasses import dataclass

from campaigns.config.schema import Config
from store.engine import connect
from store.locks import run_lock
from store.migrate import MigrationState, Revision, state, upgrade


@dataclass(frozen=True)
class MigrationReport:
    """What ``campaign migrate`` found and did."""

    before: MigrationState
    applied: tuple[Revision, ...]
    #: True when nothing was applied because only a check was asked for.
    checked_only: bool


def migrate_store(config: Config, check_only: bool = False) -> MigrationReport:
    """Apply every pending migration (or, with ``check_only``, only say what is pending).

    Migrating holds the run lock, so that no run (or load) is writing while tables change.
    """
    engine = connect(config.store.url, config.root)
    try:
        before = state(engine)
        if check_only or before.up_to_date:
            return MigrationReport(before, (), check_only)
        with run_lock(engine):
            applied = upgrade(engine)
        return MigrationReport(before, applied, False)
    finally:
        engine.dispose()
