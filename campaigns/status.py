"""``campaign status``: what the store holds, the last runs, the outbox, and what fires next.

Read through :mod:`store.readonly` (the plain DB-API, no SQLAlchemy or pandas), so that an
operator's ``campaign status --format json`` answers at once. Message counts are read live from the
outbox with the names of :mod:`campaigns.counts`: a run's messages that a later run or a worker
delivered show as sent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from campaigns.config.rules import OnceTrigger, ScheduleTrigger
from campaigns.config.schema import Config
from campaigns.counts import Counts, from_outbox, total
from campaigns.errors import CampaignError, StoreError
from campaigns.triggers import next_fire
from store.liveness import run_alive
from store.readonly import (
    Reader,
    StoreReadError,
    message_counts,
    reading,
    stored_json,
    stored_time,
)

#: The meta key ``campaign pause`` sets (see :mod:`campaigns.delivery.control`).
PAUSED_KEY = "delivery_paused_at"


@dataclass(frozen=True)
class Failure:
    """One message's last delivery error."""

    campaign: str
    recipient: str
    channel: str
    status: str
    attempts: int
    error: str


@dataclass(frozen=True)
class RunStatus:
    """One run: when, how it ended, and its messages' counts now."""

    run_id: int
    at: datetime
    started_at: datetime
    finished_at: datetime | None
    status: str
    #: Why the run failed, as a sentence (None when it did not).
    error: str | None
    counts: Counts


@dataclass(frozen=True)
class NextFire:
    """When an enabled campaign fires next (None: per-customer triggers, or a spent one-shot)."""

    campaign: str
    trigger: str
    at: datetime | None


@dataclass
class Status:
    """A snapshot of a workspace's store."""

    store: str
    #: False until the first run (or ``campaign load``) creates the store.
    exists: bool = True
    customers: int = 0
    model_version: int | None = None
    segments: list[tuple[int, str, int]] = field(default_factory=list)
    runs: list[RunStatus] = field(default_factory=list)
    #: Every message in the outbox, by state (the names of :mod:`campaigns.counts`).
    outbox: Counts = field(default_factory=Counts)
    #: When ``campaign pause`` stopped delivery, or None while delivery runs.
    paused_since: datetime | None = None
    #: The latest delivery errors (failed, bounced, or waiting for a retry), newest first.
    failures: list[Failure] = field(default_factory=list)
    next_fires: list[NextFire] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The status with snake_case keys, ISO 8601 times and integer counts."""
        return {
            "store": self.store,
            "store_exists": self.exists,
            "customers": self.customers,
            "model_version": self.model_version,
            "segments": [
                {"segment_id": sid, "name": name, "customers": size}
                for sid, name, size in self.segments
            ],
            "runs": [
                {
                    "run_id": run.run_id,
                    "at": _iso(run.at),
                    "started_at": _iso(run.started_at),
                    "finished_at": _iso(run.finished_at),
                    "status": run.status,
                    "error": run.error,
                    **run.counts.to_json(),
                }
                for run in self.runs
            ],
            "outbox": {
                key: value
                for key, value in self.outbox.to_json().items()
                if key not in ("audience", "left_out", "left_out_by_reason")
            },
            "delivery_paused": self.paused_since is not None,
            "delivery_paused_since": _iso(self.paused_since),
            "delivery_errors": [
                {
                    "campaign": f.campaign,
                    "recipient": f.recipient,
                    "channel": f.channel,
                    "status": f.status,
                    "attempts": f.attempts,
                    "error": f.error,
                }
                for f in self.failures
            ],
            "next_fires": [
                {"campaign": n.campaign, "trigger": n.trigger, "next_fire_at": _iso(n.at)}
                for n in self.next_fires
            ],
        }


def workspace_status(config: Config, now: datetime, last_runs: int = 5) -> Status:
    """Read the store's state and the next fire time of every enabled campaign."""
    status = Status(store=_shown_url(config))
    status.next_fires = [
        NextFire(
            name,
            campaign.trigger.type,
            next_fire(campaign.trigger, now)
            if isinstance(campaign.trigger, ScheduleTrigger | OnceTrigger)
            else None,
        )
        for name, campaign in config.campaigns.items()
        if campaign.enabled
    ]
    try:
        with reading(config.store.url, config.root) as reader:
            if reader is None:
                status.exists = False
                return status
            _read(reader, config, now, last_runs, status)
    except StoreReadError as exc:
        raise StoreError(f"{status.store}: {exc}") from None
    return status


def _read(reader: Reader, config: Config, now: datetime, last_runs: int, status: Status) -> None:
    status.customers = int(reader.rows("SELECT COUNT(*) AS n FROM customer")[0]["n"])
    models = reader.rows(
        "SELECT version, profiles FROM segment_model ORDER BY version DESC LIMIT 1"
    )
    if models:
        status.model_version = int(models[0]["version"])
        names = config.segmentation.names
        status.segments = [
            (int(p["segment_id"]), names.get(int(p["segment_id"]), str(p["name"])), int(p["size"]))
            for p in stored_json(models[0]["profiles"])
        ]
    # SELECT *: a store not yet migrated has no host, pid or alive_until.
    runs = reader.rows("SELECT * FROM campaign_run ORDER BY id DESC LIMIT ?", (last_runs,))
    counted = message_counts(reader, now)
    status.outbox = from_outbox(counted)
    for run in runs:
        counts = from_outbox(r for r in counted if r["run_id"] == run["id"])
        # Who was matched and left out is known only when the run planned: from its summary.
        planned_then = total(_summary_counts(stored_json(run["summary"]) or []))
        counts.audience = planned_then.audience
        counts.left_out = planned_then.left_out
        status.runs.append(
            RunStatus(
                run_id=int(run["id"]),
                at=_time(run["at"]),
                started_at=_time(run["started_at"]),
                finished_at=stored_time(run["finished_at"]),
                status=_run_state(run),
                error=user_sentence(run["error"]) if run["error"] else None,
                counts=counts,
            )
        )
    paused = reader.rows("SELECT value FROM meta WHERE key = ?", (PAUSED_KEY,))
    if paused and paused[0]["value"]:
        status.paused_since = datetime.fromisoformat(str(paused[0]["value"]))
    status.failures = [
        Failure(
            str(r["campaign"]),
            str(r["recipient"] or ""),
            str(r["channel"]),
            str(r["status"]),
            int(r["attempts"]),
            str(r["last_error"]),
        )
        for r in reader.rows(
            "SELECT campaign, recipient, channel, status, attempts, last_error FROM message "
            "WHERE last_error IS NOT NULL AND status <> 'sent' ORDER BY id DESC LIMIT 5"
        )
    ]


def outbox_waiting(config: Config, now: datetime) -> Counts:
    """The outbox's messages by state at ``now`` (what a worker that found nothing to send can
    say is waiting, and why)."""
    try:
        with reading(config.store.url, config.root) as reader:
            return Counts() if reader is None else from_outbox(message_counts(reader, now))
    except StoreReadError as exc:
        raise StoreError(f"{_shown_url(config)}: {exc}") from None


def _summary_counts(rows: list[dict[str, Any]]) -> list[Counts]:
    """The audience and left-out counts a run stored in its summary rows."""
    return [
        Counts(audience=int(r.get("audience", 0)), left_out=dict(r.get("left_out_by_reason", {})))
        for r in rows
    ]


def _run_state(run: dict[str, Any]) -> str:
    """A run's status; ``died`` for one still marked running whose process stopped (the next run
    records it so; status says it already). Heartbeats follow the wall clock, not ``--at``."""
    status = str(run["status"])
    if status != "running":
        return status
    alive = run_alive(
        status,
        run.get("host"),
        run.get("pid"),
        stored_time(run.get("alive_until")),
        datetime.now(UTC).replace(tzinfo=None),
    )
    return status if alive else "died"


def _time(value: Any) -> datetime:
    found = stored_time(value)
    assert found is not None
    return found


#: "TemplateCheckError: template x not found" as older runs stored their errors.
_CLASS_PREFIX = re.compile(r"^([A-Z][A-Za-z]*(?:Error|Segment)): ")


def user_sentence(error: str) -> str:
    """A stored run error as a sentence for people: without the name of the exception class
    for the errors a user can fix; naming it for unexpected ones."""
    found = _CLASS_PREFIX.match(error)
    if found is None:
        return error
    if found.group(1) in _user_error_names():
        return error[found.end() :]
    return f"unexpected error ({error}); please report it"


def _user_error_names() -> set[str]:
    names: set[str] = set()
    stack: list[type[BaseException]] = [CampaignError]
    while stack:
        cls = stack.pop()
        names.add(cls.__name__)
        stack.extend(cls.__subclasses__())
    return names


def _shown_url(config: Config) -> str:
    """The store's URL for people: no password; a SQLite path as the config gives it."""
    url = config.store.url
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        credentials, host = rest.rsplit("@", 1)
        return f"{scheme}://{credentials.split(':', 1)[0]}:***@{host}"
    return url


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat(timespec="seconds")
