"""Delivery by several local processes at once (``campaign run --workers N``).

The run's own process drains the outbox as it always does, and ``N - 1`` more processes drain
it beside it, each with its own connection to the store. They share the work the way separate
``campaign worker`` processes do: each claims its own batches (``FOR UPDATE SKIP LOCKED`` on
PostgreSQL; on SQLite a claim is one atomic ``UPDATE``, but the single writer leaves little to
gain), so every message is delivered by exactly one of them, and a process that dies leaves its
claims to expire and be taken again.

The extra processes are forked where the platform can (they start at once, where a spawned one
would import everything again, seconds at a time) and open their own connections; they never use
the run's, and leave them to the run when they exit. Elsewhere they are spawned.
"""

from __future__ import annotations

import multiprocessing
import queue
import traceback
from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from campaigns.config.schema import Config
from campaigns.delivery.drain import DrainResult, drain
from campaigns.errors import DeliveryError


def merge(results: list[DrainResult]) -> DrainResult:
    """One :class:`DrainResult` adding up the drains of several processes."""
    total = DrainResult()
    for part in results:
        for name in ("sent", "failed", "retrying", "bounced", "suppressed", "sent_by_run"):
            getattr(total, name).update(getattr(part, name))
        for campaign, places in part.destinations.items():
            total.destinations.setdefault(campaign, set()).update(places)
        total.exports_finished += part.exports_finished
        total.exports_rolled_back += part.exports_rolled_back
        total.paused = total.paused or part.paused
        total.stopped = total.stopped or part.stopped
    return total


def _drain_in_child(config: Config, at: datetime | None, label: str, results: Any) -> None:
    from store.engine import opened_store

    try:
        with opened_store(config.store.url, config.root) as engine:
            results.put(("ok", drain(engine, config, at, label)))
    except BaseException as exc:  # reported to the parent, which raises it
        results.put(("error", f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"))


def _collect(results: Any, children: list[Any]) -> list[tuple[str, Any]]:
    """Each child's one answer, read before joining it (a child with an unread answer in the
    pipe cannot exit); a child that died without answering is waited for, not for ever."""
    answers: list[tuple[str, Any]] = []
    while len(answers) < len(children):
        try:
            answers.append(results.get(timeout=0.5))
        except queue.Empty:
            if not any(child.is_alive() for child in children):
                try:
                    while len(answers) < len(children):
                        answers.append(results.get(timeout=0.5))
                except queue.Empty:
                    break
    for child in children:
        child.join()
    return answers


def drain_with_workers(
    engine: Engine, config: Config, at: datetime | None, label: str, workers: int
) -> DrainResult:
    """Deliver what is deliverable with ``workers`` processes: this one and ``workers - 1``
    more; their results added up. A process that fails raises :class:`DeliveryError`
    once all have finished (what the others delivered is recorded in the store either way)."""
    if workers <= 1:
        return drain(engine, config, at, label)
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    context: Any = multiprocessing.get_context(method)
    results = context.Queue()
    children = [
        context.Process(
            target=_drain_in_child,
            args=(config, at, f"{label}-w{number}", results),
            name=f"campaign-delivery-{number}",
        )
        for number in range(2, workers + 1)
    ]
    for child in children:
        child.start()
    try:
        parts = [drain(engine, config, at, f"{label}-w1")]
    finally:
        answers = _collect(results, children)
    errors = [text for kind, text in answers if kind == "error"]
    parts += [part for kind, part in answers if kind == "ok"]
    if len(answers) < len(children):
        codes = ", ".join(str(c.exitcode) for c in children if c.exitcode != 0)
        errors.append(f"{len(children) - len(answers)} exited without a result (codes {codes})")
    if errors:
        raise DeliveryError(
            f"{len(errors)} of {workers} delivery processes failed; what the others delivered "
            f"is recorded, and the next run or worker delivers the rest. First: {errors[0]}"
        )
    return merge(parts)
