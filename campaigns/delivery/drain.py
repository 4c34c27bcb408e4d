"""Drain the outbox: claim queued messages per channel, send them, mark them sent or failed."""

from __future__ import annotations

import os
import socket
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Engine

from campaigns.config.schema import Config
from campaigns.delivery import make_channel
from store import outbox

#: Messages a channel is handed at once (the file channel writes one file per campaign per batch).
BATCH_SIZE = 1_000_000


@dataclass
class DrainResult:
    """What one drain delivered: counts per campaign and where each campaign's messages went."""

    sent: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)
    destinations: dict[str, set[str]] = field(default_factory=dict)


def worker_id() -> str:
    """This process's name in ``claimed_by``: host and pid."""
    return f"{socket.gethostname()}:{os.getpid()}"


def drain(engine: Engine, config: Config, now: datetime, label: str) -> DrainResult:
    """Deliver every queued message of every configured channel."""
    result = DrainResult()
    worker = worker_id()
    for name in sorted(config.channels):
        channel = make_channel(name, config)
        part = 0
        while True:
            batch = outbox.claim(engine, name, worker, now, limit=BATCH_SIZE)
            if batch.empty:
                break
            part += 1
            outcome = channel.send(batch, label if part == 1 else f"{label}-{part}")
            campaigns = dict(zip(batch["id"].astype(int), batch["campaign"], strict=True))
            sent = [
                (i, d)
                for i, d, e in zip(outcome.ids, outcome.destinations, outcome.errors, strict=True)
                if e is None
            ]
            failed = [(i, e) for i, e in zip(outcome.ids, outcome.errors, strict=True) if e]
            outbox.mark_sent(engine, [i for i, _ in sent], [d for _, d in sent], now)
            outbox.mark_failed(engine, [i for i, _ in failed], [e for _, e in failed])
            for i, destination in sent:
                result.sent[campaigns[i]] += 1
                if destination:
                    result.destinations.setdefault(campaigns[i], set()).add(destination)
            for i, _ in failed:
                result.failed[campaigns[i]] += 1
    return result
