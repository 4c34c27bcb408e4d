"""The kill switch: ``campaign pause`` stops every run and worker from sending until ``resume``.

The switch is a row in the store's meta table, so it reaches every process and machine sharing
the store. Runs still plan and queue while paused (no window is lost); nothing leaves the outbox.
Running deliveries notice it before their next batch.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine
from sqlmodel import Session

from campaigns.config.schema import Config
from store import outbox
from store.engine import get_meta, opened_store, set_meta
from store.tables import Meta

PAUSED_KEY = "delivery_paused_at"


def pause(engine: Engine, at: datetime) -> datetime:
    """Pause delivery (from ``at``, naive UTC); pausing again keeps the first time."""
    since = paused_since(engine)
    if since is not None:
        return since
    set_meta(engine, PAUSED_KEY, at.isoformat(timespec="seconds"))
    return at


def resume(engine: Engine) -> datetime | None:
    """Resume delivery; return since when it was paused (None if it was not)."""
    since = paused_since(engine)
    with Session(engine) as session:
        row = session.get(Meta, PAUSED_KEY)
        if row is not None:
            session.delete(row)
            session.commit()
    return since


def paused_since(engine: Engine) -> datetime | None:
    """When delivery was paused, or None while it runs."""
    value = get_meta(engine, PAUSED_KEY)
    return datetime.fromisoformat(value) if value else None


def pause_workspace(config: Config, at: datetime) -> datetime:
    """``campaign pause``: pause the workspace's store; return since when it is paused."""
    with opened_store(config.store.url, config.root) as engine:
        return pause(engine, at)


def resume_workspace(config: Config) -> tuple[datetime | None, int]:
    """``campaign resume``: return since when it was paused and how many messages are queued."""
    with opened_store(config.store.url, config.root) as engine:
        since = resume(engine)
        return since, outbox.counts_by_status(engine).get("queued", 0)


#: The outbox states ``campaign retry`` puts back in the queue.
REQUEUEABLE = ("failed", "suppressed")


def requeue_workspace(config: Config, statuses: tuple[str, ...], campaign: str | None) -> int:
    """``campaign retry``: queue failed (or withheld) messages again; return how many.

    Their attempts start afresh. The send-time check still applies, so a message to a customer
    who is still suppressed is withheld again.
    """
    if campaign is not None:
        config.require_campaign(campaign)
    with opened_store(config.store.url, config.root) as engine:
        return outbox.requeue(engine, statuses, campaign)
