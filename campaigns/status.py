"""``campaign status``: what the store holds, the last runs, the outbox, and what fires next."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from campaigns.config.rules import OnceTrigger, ScheduleTrigger
from campaigns.config.schema import Config
from campaigns.delivery.control import paused_since
from campaigns.delivery.drain import utc_now
from campaigns.run_records import is_alive
from campaigns.segments import latest_model
from campaigns.triggers import next_fire
from store import outbox
from store.engine import opened_store
from store.shop import count_customers
from store.tables import CampaignRun


@dataclass(frozen=True)
class Failure:
    """One message's last delivery error."""

    campaign: str
    recipient: str
    channel: str
    status: str
    attempts: int
    error: str


@dataclass
class Status:
    """A snapshot of a workspace's store."""

    store: str
    customers: int
    model_version: int | None
    segments: list[tuple[int, str, int]] = field(default_factory=list)
    runs: list[CampaignRun] = field(default_factory=list)
    outbox: dict[str, int] = field(default_factory=dict)
    #: When ``campaign pause`` stopped delivery, or None while delivery runs.
    paused_since: datetime | None = None
    #: The latest delivery errors (failed, bounced, or waiting for a retry), newest first.
    failures: list[Failure] = field(default_factory=list)
    #: Per enabled campaign: its trigger type and next fire time (None for per-customer
    #: triggers, which are checked at every run, and for a one-shot that has fired).
    next_fires: list[tuple[str, str, datetime | None]] = field(default_factory=list)


def workspace_status(config: Config, now: datetime, last_runs: int = 5) -> Status:
    """Read the store's state and the next fire time of every enabled campaign."""
    with opened_store(config.store.url, config.root) as engine:
        return _status(engine, config, now, last_runs)


def _status(engine: Engine, config: Config, now: datetime, last_runs: int) -> Status:
    model = latest_model(engine)
    with Session(engine) as session:
        runs = list(
            session.exec(select(CampaignRun).order_by(col(CampaignRun.id).desc()).limit(last_runs))
        )
    # A run still marked running whose process stopped (its heartbeat too) has died; the next
    # run records that, and status says it already.
    runs = [
        r.model_copy(update={"status": "died"})
        if r.status == "running" and not is_alive(r, utc_now())
        else r
        for r in runs
    ]
    status = Status(
        store=str(engine.url.render_as_string(hide_password=True)),
        customers=count_customers(engine),
        model_version=model.version if model else None,
        runs=runs,
        outbox=outbox.counts_by_status(engine),
        paused_since=paused_since(engine),
    )
    status.failures = [
        Failure(
            str(r.campaign),
            str(r.recipient or ""),
            str(r.channel),
            str(r.status),
            int(str(r.attempts)),
            str(r.last_error),
        )
        for r in outbox.recent_errors(engine).itertuples(index=False)
    ]
    if model is not None:
        names = config.segmentation.names
        status.segments = [
            (
                int(p["segment_id"]),
                names.get(int(p["segment_id"]), str(p["name"])),
                int(p["size"]),
            )
            for p in model.profiles
        ]
    status.next_fires = [
        (
            name,
            campaign.trigger.type,
            next_fire(campaign.trigger, now)
            if isinstance(campaign.trigger, ScheduleTrigger | OnceTrigger)
            else None,
        )
        for name, campaign in config.campaigns.items()
        if campaign.enabled
    ]
    return status
