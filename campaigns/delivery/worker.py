"""``campaign worker``: drain the outbox continuously, beside (or instead of) ``campaign run``.

Several workers may share one PostgreSQL store, on one machine or many: each claims its own
batches (``FOR UPDATE SKIP LOCKED``), so every message is sent by one of them. On SQLite, workers
are safe too (claims are atomic) but the single writer leaves little to gain from more than one.
"""

from __future__ import annotations

import os
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from campaigns.config.schema import Config
from campaigns.delivery.drain import DrainResult, drain, utc_now
from campaigns.errors import ConfigError
from store.engine import opened_store


@dataclass
class WorkerTotals:
    """What a worker did over its life."""

    sent: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)
    retrying: Counter[str] = field(default_factory=Counter)
    bounced: Counter[str] = field(default_factory=Counter)
    paused: bool = False

    def add(self, drained: DrainResult) -> None:
        self.sent.update(drained.sent)
        self.failed.update(drained.failed)
        self.retrying.update(drained.retrying)
        self.bounced.update(drained.bounced)


def work(
    config: Config,
    stop: threading.Event,
    *,
    once: bool = False,
    poll_seconds: float = 5.0,
    channels: list[str] | None = None,
    on_drain: Callable[[DrainResult], None] | None = None,
) -> WorkerTotals:
    """Drain until ``stop`` is set (or, with ``once``, until nothing is deliverable now).

    Between drains it sleeps ``poll_seconds``; while delivery is paused it waits the same way
    (``once`` returns at once). ``stop`` is also read between batches, so SIGTERM finishes the
    batch in hand and returns.
    """
    for name in channels or []:
        if name not in config.channels:
            known = ", ".join(sorted(config.channels))
            raise ConfigError(f"no channel called {name!r}; channels in the config: {known}")
    totals = WorkerTotals()
    with opened_store(config.store.url, config.root) as engine:
        while not stop.is_set():
            now = utc_now()
            drained = drain(
                engine,
                config,
                now,
                label=f"{now:%Y%m%dT%H%M%S}-worker{os.getpid()}",
                channels=channels,
                should_stop=stop.is_set,
            )
            totals.add(drained)
            totals.paused = drained.paused
            if on_drain is not None and (drained.handled or drained.paused):
                on_drain(drained)
            if once:
                break
            stop.wait(poll_seconds)
    return totals
