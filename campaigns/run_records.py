"""The ``campaign_run`` rows: a run's start, heartbeat and end, and the runs that died.

A run records its host and process and keeps ``alive_until`` a couple of minutes ahead while it
works. Runs hold the run lock, so a run that has taken it knows that any other row still saying
``running`` belongs to a process that died (SIGKILL, a power cut): it marks those ``died``, and the
claims their process held on this host are released at once instead of waiting for their lease.
``campaign status``, which takes no lock, calls a ``running`` row whose heartbeat stopped dead too.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col, select

from store import outbox
from store.bulk import time_param
from store.liveness import dead_local_owner
from store.tables import CampaignRun

_log = logging.getLogger(__name__)

#: How far ahead a working run's heartbeat reaches, and how often it beats.
HEARTBEAT = timedelta(minutes=2)
BEAT_EVERY = timedelta(seconds=30)


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def start_run(engine: Engine, at: datetime, config_hash: str) -> tuple[int, list[int]]:
    """Record a new run (the caller holds the run lock); return its id and the runs found dead.

    Every other run still ``running`` died without finishing: it is marked ``died``.
    """
    now = _now()
    died = mark_died(engine, now)
    row = CampaignRun(
        started_at=now,
        at=at,
        config_hash=config_hash,
        host=socket.gethostname(),
        pid=os.getpid(),
        alive_until=now + HEARTBEAT,
    )
    with Session(engine) as session:
        session.add(row)
        session.commit()
        session.refresh(row)
        assert row.id is not None
        return row.id, died


def mark_died(engine: Engine, now: datetime) -> list[int]:
    """Mark every ``running`` run ``died``; return their ids. Only under the run lock."""
    with Session(engine) as session:
        stale = list(session.exec(select(CampaignRun).where(col(CampaignRun.status) == "running")))
        for run in stale:
            run.status = "died"
            run.finished_at = now
            run.error = "the process stopped without finishing (killed, or the machine stopped)"
            session.add(run)
        session.commit()
        return [int(run.id) for run in stale if run.id is not None]


#: Runs whose ``alive_until`` is set ahead for a while (:func:`held_alive`): no beats meanwhile.
_held: set[int] = set()


@contextmanager
def held_alive(engine: Engine, run_id: int, seconds: float) -> Iterator[None]:
    """Set the run's ``alive_until`` ``seconds`` ahead and skip its beats while the block runs.

    For a block that holds the store's only write lock (SQLite) for long, as a run writing its
    rendered messages in one transaction does: the heartbeat could not write, and the run would
    look dead once ``alive_until`` passed.
    """
    with engine.begin() as connection:
        connection.execute(
            text("UPDATE campaign_run SET alive_until = :until WHERE id = :id"),
            {"until": time_param(_now() + timedelta(seconds=seconds)), "id": run_id},
        )
    _held.add(run_id)
    try:
        yield
    finally:
        _held.discard(run_id)


@contextmanager
def heartbeat(engine: Engine, run_id: int) -> Iterator[None]:
    """Keep the run's ``alive_until`` ahead while the block runs."""
    done = threading.Event()

    def beat() -> None:
        while not done.wait(BEAT_EVERY.total_seconds()):
            if run_id in _held:
                continue
            try:
                with engine.begin() as connection:
                    connection.execute(
                        text("UPDATE campaign_run SET alive_until = :until WHERE id = :id"),
                        {"until": time_param(_now() + HEARTBEAT), "id": run_id},
                    )
            except SQLAlchemyError as exc:
                _log.warning("cannot extend run %s's heartbeat: %s", run_id, exc)

    thread = threading.Thread(target=beat, name="run-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


def release_dead_local_claims(engine: Engine, now: datetime) -> int:
    """End the leases of batches held by dead processes of this host; return their messages.

    ``claimed_by`` is ``host:pid#token``: a process of this host that no longer exists will
    never finish its batch, so it need not keep it until the lease lapses. Other hosts' claims
    wait for their lease.
    """
    dead = [
        str(token)
        for token in outbox.held_claims(engine, now)["claimed_by"]
        if dead_local_owner(str(token))
    ]
    released = outbox.release_claims(engine, dead, now) if dead else 0
    with engine.begin() as connection:
        for row in connection.execute(
            text(
                "SELECT token FROM export_batch WHERE status = 'prepared' AND claimed_until >= :n"
            ),
            {"n": time_param(now)},
        ).scalars():
            if dead_local_owner(str(row)):
                connection.execute(
                    text("UPDATE export_batch SET claimed_until = :past WHERE token = :t"),
                    {"past": time_param(now - timedelta(seconds=1)), "t": row},
                )
                released += 1
    return released
