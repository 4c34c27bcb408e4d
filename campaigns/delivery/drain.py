"""Drain the outbox: claim deliverable messages per channel, send them, record each one's fate.

Sent messages are marked sent; transient failures go back to the queue with an exponential
backoff (``backoff_seconds`` doubled per attempt, at most a day) until ``max_attempts``; permanent
failures are marked failed; bounces are marked bounced and their customers suppressed. Before each
batch the kill switch is read, so ``campaign pause`` stops a delivery in progress.

Leases, retry times and ``sent_at`` follow the wall clock, not the run's logical ``--at`` time: a
lease is about how long a real process may hold a batch.
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

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from campaigns.config.schema import Config
from campaigns.delivery import make_channel
from campaigns.delivery.base import Fate, Outcome
from campaigns.delivery.control import paused_since
from store import outbox

_log = logging.getLogger(__name__)

#: The longest wait between two attempts.
MAX_BACKOFF = timedelta(days=1)


@dataclass
class DrainResult:
    """What one drain did: counts per campaign and where each campaign's messages went."""

    sent: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)
    retrying: Counter[str] = field(default_factory=Counter)
    bounced: Counter[str] = field(default_factory=Counter)
    destinations: dict[str, set[str]] = field(default_factory=dict)
    #: Delivery was paused (before or during this drain); what was not sent stays queued.
    paused: bool = False
    #: The drain was asked to stop before the outbox was empty.
    stopped: bool = False

    @property
    def handled(self) -> int:
        """Messages this drain sent or recorded a failure for."""
        return sum(sum(c.values()) for c in (self.sent, self.failed, self.retrying, self.bounced))


def worker_id() -> str:
    """This process's name in ``claimed_by``: host and pid."""
    return f"{socket.gethostname()}:{os.getpid()}"


def utc_now() -> datetime:
    """The wall clock, as naive UTC (how the store keeps times)."""
    return datetime.now(UTC).replace(tzinfo=None)


def backoff(attempts: int, base_seconds: float) -> timedelta:
    """The wait after the ``attempts``-th failed attempt: base, 2 x base, 4 x base, ..."""
    return min(timedelta(seconds=base_seconds * 2 ** max(attempts - 1, 0)), MAX_BACKOFF)


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

    ``at`` is the run's logical time and only names files (through ``label``); leases and retry
    times follow ``clock``. ``should_stop`` is read between batches for a graceful stop.
    """
    result = DrainResult()
    worker = worker_id()
    label = label or f"{(at or clock()):%Y%m%dT%H%M%S}-{os.getpid()}"
    for name in sorted(channels if channels is not None else config.channels):
        settings = config.channels[name]
        if not outbox.has_deliverable(engine, name, clock()):
            continue  # an idle channel is never built: its credentials are not needed
        channel = make_channel(name, config)
        try:
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
                batch = outbox.claim(engine, name, worker, clock(), limit=limit, lease=lease)
                if batch.empty:
                    break
                part += 1
                with _keeping_lease(engine, str(batch["claimed_by"].iloc[0]), lease, clock):
                    outcome = channel.send(batch, label if part == 1 else f"{label}-{part}")
                attempts = dict(
                    zip(batch["id"].astype(int), batch["attempts"].astype(int), strict=True)
                )
                campaigns = dict(zip(batch["id"].astype(int), batch["campaign"], strict=True))
                _record(
                    engine,
                    outcome,
                    attempts,
                    campaigns,
                    settings.max_attempts,
                    settings.backoff_seconds,
                    clock(),
                    result,
                )
        finally:
            channel.close()
    return result


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


def _record(
    engine: Engine,
    outcome: Outcome,
    attempts: dict[int, int],
    campaigns: dict[int, str],
    max_attempts: int,
    base: float,
    now: datetime,
    result: DrainResult,
) -> None:
    sent: list[tuple[int, str | None]] = []
    failed: list[tuple[int, str]] = []
    retry: list[tuple[int, str, datetime]] = []
    bounced: list[tuple[int, str]] = []
    for message, res in zip(outcome.ids, outcome.results, strict=True):
        error = res.error or ""
        if res.fate is Fate.SENT:
            sent.append((message, res.destination))
            result.sent[campaigns[message]] += 1
            if res.destination:
                result.destinations.setdefault(campaigns[message], set()).add(res.destination)
        elif res.fate is Fate.RETRY and attempts[message] < max_attempts:
            retry.append((message, error, now + backoff(attempts[message], base)))
            result.retrying[campaigns[message]] += 1
        elif res.fate is Fate.BOUNCED:
            bounced.append((message, error))
            result.bounced[campaigns[message]] += 1
        else:
            if res.fate is Fate.RETRY:
                error = f"{error} (gave up after {attempts[message]} attempts)"
            failed.append((message, error))
            result.failed[campaigns[message]] += 1
    outbox.mark_sent(engine, [i for i, _ in sent], [d for _, d in sent], now)
    outbox.mark_retry(
        engine, [i for i, _, _ in retry], [e for _, e, _ in retry], [t for *_, t in retry]
    )
    outbox.mark_failed(engine, [i for i, _ in failed], [e for _, e in failed])
    outbox.mark_bounced(engine, [i for i, _ in bounced], [e for _, e in bounced], now)
