"""Drain the outbox: claim deliverable messages per channel, send them, record each one's fate.

For every claimed batch, in order:

1. the kill switch is read (``campaign pause`` stops a delivery in progress);
2. the send-time check: messages whose customer became suppressed after they were queued
   (unsubscribed, bounced, complained, or in the do-not-contact file) are marked ``suppressed``
   and never sent;
3. the channel sends. A file export is two-phase (staged, recorded, published, marked: see
   :mod:`store.exports`); SMTP and webhooks report each message as soon as its receiver has
   answered, and a send is recorded at once, so a crash re-sends at most the message in flight;
4. the rest is recorded: transient failures go back to the queue with an exponential backoff
   (``backoff_seconds`` doubled per attempt, at most an hour), and fail for good only after
   ``max_attempts`` *and* ``retry_for`` since the first failure; permanent failures are marked
   failed; bounces are marked bounced and their customers suppressed.

A drain claims only messages due when it started, so a message it has just tried waits for a later
drain, however long this one runs. Before a file channel claims, unfinished exports of dead
workers are finished or rolled back.

Leases and ``sent_at`` follow the wall clock: a lease is about how long a real process may hold a
batch. What is due follows the run's ``--at`` when it has one: a message deferred (quiet hours) or
set to retry past ``at`` is not delivered by that run, and retries are scheduled from ``at``.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from campaigns.config.schema import Channel as ChannelSettings
from campaigns.config.schema import Config
from campaigns.delivery import make_channel
from campaigns.delivery.base import Channel, Fate, Outcome, Result
from campaigns.delivery.control import paused_since
from campaigns.delivery.export import FileChannel, publish
from campaigns.inputs import do_not_contact
from campaigns.run_records import release_dead_local_claims
from store import exports, outbox

_log = logging.getLogger(__name__)

#: The longest wait between two attempts.
MAX_BACKOFF = timedelta(hours=1)


@dataclass
class DrainResult:
    """What one drain did: counts per campaign and where each campaign's messages went."""

    sent: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)
    retrying: Counter[str] = field(default_factory=Counter)
    bounced: Counter[str] = field(default_factory=Counter)
    #: Withheld at send time: the customer became suppressed after the message was queued.
    suppressed: Counter[str] = field(default_factory=Counter)
    destinations: dict[str, set[str]] = field(default_factory=dict)
    #: Messages sent, by the run that queued them (a run also delivers earlier runs' messages).
    sent_by_run: Counter[int] = field(default_factory=Counter)
    #: Messages of exports that a dead worker had prepared: finished (published) or rolled back.
    exports_finished: int = 0
    exports_rolled_back: int = 0
    #: Delivery was paused (before or during this drain); what was not sent stays queued.
    paused: bool = False
    #: The drain was asked to stop before the outbox was empty.
    stopped: bool = False

    @property
    def handled(self) -> int:
        """Messages this drain sent or recorded a failure for."""
        counters = (self.sent, self.failed, self.retrying, self.bounced, self.suppressed)
        return sum(sum(c.values()) for c in counters)


def worker_id() -> str:
    """This process's name in ``claimed_by``: host and pid."""
    return f"{socket.gethostname()}:{os.getpid()}"


def utc_now() -> datetime:
    """The wall clock, as naive UTC (how the store keeps times)."""
    return datetime.now(UTC).replace(tzinfo=None)


def backoff(attempts: int, base_seconds: float) -> timedelta:
    """The wait after the ``attempts``-th failed attempt: base, 2 x base, 4 x base, ...

    At least a second, so that a retry always falls after the drain that made it started.
    """
    wait = timedelta(seconds=base_seconds * 2 ** min(max(attempts - 1, 0), 30))
    return max(min(wait, MAX_BACKOFF), timedelta(seconds=1))


def drain(
    engine: Engine,
    config: Config,
    at: datetime | None = None,
    label: str = "",
    *,
    channels: Iterable[str] | None = None,
    clock: Callable[[], datetime] = utc_now,
    should_stop: Callable[[], bool] = lambda: False,
) -> DrainResult:
    """Deliver every deliverable message of every configured channel (or of ``channels``).

    ``at`` is the run's logical time: messages deferred past it (quiet hours) wait; it also names
    files (through ``label``) and decides what is due (without it, ``clock()``). Leases follow
    ``clock``. ``should_stop`` is read between batches for a graceful stop.
    """
    result = DrainResult()
    worker = worker_id()
    started = clock()
    release_dead_local_claims(engine, started)
    # Claims take what was due when the drain started; retries are scheduled from the run's time.
    due_by = at if at is not None else started

    def due() -> datetime:
        return at if at is not None else clock()

    label = label or f"{(at or started):%Y%m%dT%H%M%S}-{os.getpid()}"
    listed: set[str] | None = None  # the do-not-contact file, read once if a batch needs it
    for name in sorted(channels if channels is not None else config.channels):
        settings = config.channels[name]
        file_channel = settings.type == "file"
        stranded = exports.unfinished(engine, name, clock()) if file_channel else []
        if not stranded and not outbox.has_deliverable(engine, name, clock(), due_by=due_by):
            continue  # an idle channel is never built: its credentials are not needed
        channel = make_channel(name, config)
        try:
            if isinstance(channel, FileChannel):
                _recover_exports(engine, name, stranded, clock(), result)
            rate: float | None = getattr(settings, "rate_limit", None)
            limit = _batch_limit(channel.batch_size, rate, settings.lease_seconds)
            lease = timedelta(seconds=settings.lease_seconds)
            part = 0
            while True:
                if should_stop():
                    result.stopped = True
                    return result
                if paused_since(engine) is not None:
                    result.paused = True
                    return result
                batch = outbox.claim(
                    engine, name, worker, clock(), limit=limit, lease=lease, due_by=due_by
                )
                if batch.empty:
                    break
                part += 1
                token = str(batch["claimed_by"].iloc[0])
                if listed is None:
                    listed = do_not_contact(config)
                withheld = outbox.withhold_suppressed(engine, token, listed)
                if not withheld.empty:
                    result.suppressed.update(withheld["campaign"].tolist())
                    batch = batch[~batch["id"].isin(withheld["id"])]
                    if batch.empty:
                        continue
                name_part = label if part == 1 else f"{label}-{part}"
                if isinstance(channel, FileChannel):
                    _export(engine, channel, batch, token, name_part, lease, clock, result)
                    continue
                _deliver(
                    engine, channel, batch, token, name_part, lease, settings, clock, due, result
                )
        finally:
            channel.close()
    return result


def _deliver(
    engine: Engine,
    channel: Channel,
    batch: pd.DataFrame,
    token: str,
    label: str,
    lease: timedelta,
    settings: ChannelSettings,
    clock: Callable[[], datetime],
    due: Callable[[], datetime],
    result: DrainResult,
) -> None:
    """Send a batch through a message-by-message channel, recording each send at once."""
    recorded: set[int] = set()
    lock = threading.Lock()

    def on_result(message: int, outcome: Result) -> None:
        if outcome.fate is not Fate.SENT:
            return
        try:
            outbox.mark_sent(engine, [message], [outcome.destination], clock(), claimed_by=token)
        except SQLAlchemyError as exc:
            # Recorded with the rest of the batch below; only a crash before that re-sends it.
            _log.warning("cannot record message %s as sent yet: %s", message, exc)
            return
        with lock:
            recorded.add(message)

    with _keeping_lease(engine, token, lease, clock):
        outcome = channel.send(batch, label, on_result)
    ids = batch["id"].astype(int)
    attempts = dict(zip(ids, batch["attempts"].astype(int), strict=True))
    campaigns = dict(zip(ids, batch["campaign"], strict=True))
    runs = dict(zip(ids, batch["run_id"].astype(int), strict=True))
    first_failed: dict[int, datetime | None] = {
        int(i): (None if pd.isna(t) else t.to_pydatetime())
        for i, t in zip(
            batch["id"], pd.to_datetime(batch["first_failed_at"], format="ISO8601"), strict=True
        )
    }
    _record(
        engine,
        outcome,
        token,
        recorded,
        attempts,
        campaigns,
        runs,
        first_failed,
        settings,
        clock(),
        due(),
        result,
    )


def _export(
    engine: Engine,
    channel: FileChannel,
    batch: pd.DataFrame,
    token: str,
    label: str,
    lease: timedelta,
    clock: Callable[[], datetime],
    result: DrainResult,
) -> None:
    """Export a batch in two phases: staged files are recorded, then published and marked."""
    with _keeping_lease(engine, token, lease, clock):
        staged = channel.stage(batch, label)
    prepared = [
        exports.PreparedFile(f"{token}/{n}", s.campaign, str(s.path), str(s.temp_path), len(s.ids))
        for n, s in enumerate(staged, 1)
    ]
    try:
        exports.record(engine, token, prepared, clock(), lease, channel.name)
    except exports.LostClaim as exc:
        _log.warning("export abandoned, its messages will be exported later: %s", exc)
        for file in staged:
            file.temp_path.unlink(missing_ok=True)
        return
    runs = dict(zip(batch["id"].astype(int), batch["run_id"].astype(int), strict=True))
    for file, record in zip(staged, prepared, strict=True):
        channel.publish(file)
        sent = exports.finish(engine, record.token, clock())
        result.sent[file.campaign] += sent
        result.sent_by_run.update(runs[i] for i in file.ids)
        result.destinations.setdefault(file.campaign, set()).add(str(file.path))


def _recover_exports(
    engine: Engine,
    channel: str,
    stranded: list[exports.PreparedFile],
    now: datetime,
    result: DrainResult,
) -> None:
    """Finish (or roll back) exports that a dead worker prepared, before claiming anything new."""
    for prepared in stranded:
        with exports.recovering(engine, prepared.token, now) as recovery:
            if recovery is None:
                continue  # another worker is on it, or it is done
            if publish(Path(prepared.path), Path(prepared.temp_path)):
                result.sent_by_run.update(recovery.runs())
                recovery.finish()
                result.exports_finished += recovery.messages
                result.sent[prepared.campaign] += recovery.messages
                result.destinations.setdefault(prepared.campaign, set()).add(prepared.path)
            else:
                recovery.roll_back()
                result.exports_rolled_back += recovery.messages


@contextmanager
def _keeping_lease(
    engine: Engine, claimed_by: str, lease: timedelta, clock: Callable[[], datetime]
) -> Iterator[None]:
    """Extend the batch's lease every third of a lease while the block runs.

    A slow receiver (timeouts, a low rate limit) must not let the lease lapse while this worker
    is still sending, or another worker would claim the batch and send it a second time.
    """
    done = threading.Event()

    def beat() -> None:
        while not done.wait(lease.total_seconds() / 3):
            try:
                outbox.extend_lease(engine, claimed_by, clock() + lease)
            except SQLAlchemyError as exc:
                # The batch may now be claimed again when its lease lapses: sent twice at
                # worst, with the same idempotency key, never lost.
                _log.warning("cannot extend the lease of batch %s: %s", claimed_by, exc)

    thread = threading.Thread(target=beat, name="lease-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


def _batch_limit(batch_size: int, rate: float | None, lease_seconds: float) -> int:
    """The claim size: the channel's batch, cut so a rate-limited batch ends inside half a lease."""
    if rate:
        return max(1, min(batch_size, int(rate * lease_seconds / 2)))
    return batch_size


def give_up(
    attempts: int, first_failed: datetime | None, now: datetime, settings: ChannelSettings
) -> bool:
    """Whether a transiently failing message has had its chances: enough attempts over enough
    time (``max_attempts`` and ``retry_for`` since its first failure)."""
    if settings.max_attempts <= 1:
        return True
    started = first_failed if first_failed is not None else now
    return attempts >= settings.max_attempts and now - started >= settings.retry_period


def _record(
    engine: Engine,
    outcome: Outcome,
    token: str,
    recorded: set[int],
    attempts: dict[int, int],
    campaigns: dict[int, str],
    runs: dict[int, int],
    first_failed: dict[int, datetime | None],
    settings: ChannelSettings,
    now: datetime,
    due: datetime,
    result: DrainResult,
) -> None:
    """Record a batch's results; ``now`` (the wall clock) stamps sends, ``due`` (the run's time)
    schedules retries and measures ``retry_for``."""
    base = settings.backoff_seconds
    sent: list[tuple[int, str | None]] = []
    failed: list[tuple[int, str]] = []
    retry: list[tuple[int, str, datetime]] = []
    bounced: list[tuple[int, str]] = []
    for message, res in zip(outcome.ids, outcome.results, strict=True):
        error = res.error or ""
        if res.fate is Fate.SENT:
            if message not in recorded:
                sent.append((message, res.destination))
            result.sent[campaigns[message]] += 1
            result.sent_by_run[runs[message]] += 1
            if res.destination:
                result.destinations.setdefault(campaigns[message], set()).add(res.destination)
        elif res.fate is Fate.RETRY and not give_up(
            attempts[message], first_failed[message], due, settings
        ):
            retry.append((message, error, due + backoff(attempts[message], base)))
            result.retrying[campaigns[message]] += 1
        elif res.fate is Fate.BOUNCED:
            bounced.append((message, error))
            result.bounced[campaigns[message]] += 1
        else:
            if res.fate is Fate.RETRY:
                error = f"{error} (gave up after {attempts[message]} attempts)"
            failed.append((message, error))
            result.failed[campaigns[message]] += 1
    outbox.mark_sent(engine, [i for i, _ in sent], [d for _, d in sent], now, claimed_by=token)
    outbox.mark_retry(
        engine, [i for i, _, _ in retry], [e for _, e, _ in retry], [t for *_, t in retry], due
    )
    outbox.mark_failed(engine, [i for i, _ in failed], [e for _, e in failed])
    outbox.mark_bounced(engine, [i for i, _ in bounced], [e for _, e in bounced], now)
