"""``campaign worker``, ``campaign pause``, ``campaign resume`` and ``campaign serve``."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import click

from cli.errors import handles_errors
from cli.options import config_option
from cli.output import console

if TYPE_CHECKING:
    from campaigns.delivery.drain import DrainResult
    from campaigns.scheduler import JobInfo


@contextmanager
def stop_on_signals() -> Iterator[threading.Event]:
    """An event set by SIGTERM or SIGINT (Ctrl-C), for a graceful stop; handlers restored after."""
    stop = threading.Event()

    def handler(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield stop
    finally:
        for number, old in previous.items():
            signal.signal(number, old)


def _totals(drained: DrainResult) -> str:
    parts = [f"sent {sum(drained.sent.values()):,}"]
    for label, counter in (
        ("to retry", drained.retrying),
        ("failed", drained.failed),
        ("bounced", drained.bounced),
    ):
        if counter:
            parts.append(f"{sum(counter.values()):,} {label}")
    return ", ".join(parts)


@click.command("worker")
@config_option
@click.option("--once", is_flag=True, help="Drain what is deliverable now, then exit.")
@click.option(
    "--poll",
    type=click.FloatRange(min=0.01),
    default=5.0,
    show_default=True,
    help="Seconds between looks at an empty outbox.",
)
@click.option(
    "--channel", "channels", multiple=True, metavar="NAME", help="Only these channels (repeat)."
)
@handles_errors
def worker_command(config_path: Path, once: bool, poll: float, channels: tuple[str, ...]) -> None:
    """Deliver queued messages until stopped (SIGTERM or Ctrl-C finish the batch in hand).

    Run several, on one machine or many, against one PostgreSQL store to deliver in parallel.

    Example: campaign worker --poll 2 --channel email
    """
    from campaigns.config import load_config
    from campaigns.delivery.drain import worker_id
    from campaigns.delivery.worker import work

    config = load_config(config_path)
    out = console()

    def report(drained: DrainResult) -> None:
        now = datetime.now(UTC)
        if drained.handled:
            out.print(f"{now:%H:%M:%S} {_totals(drained)}")
        if drained.paused:
            out.print(f"{now:%H:%M:%S} delivery is paused (campaign resume)")

    with stop_on_signals() as stop:
        if not once:
            out.print(f"Worker {worker_id()} delivering (SIGTERM or Ctrl-C stops).")
        totals = work(
            config,
            stop,
            once=once,
            poll_seconds=poll,
            channels=list(channels) or None,
            on_drain=report,
        )
    out.print(
        f"Worker stopped: sent {sum(totals.sent.values()):,}, "
        f"failed {sum(totals.failed.values()) + sum(totals.bounced.values()):,}."
    )
    handled = sum(
        sum(c.values()) for c in (totals.sent, totals.failed, totals.retrying, totals.bounced)
    )
    if once and not handled and not totals.paused:
        from campaigns.status import outbox_waiting

        waiting = outbox_waiting(config, datetime.now(UTC).replace(tzinfo=None))
        if waiting.deferred and waiting.deferred_from is not None:
            out.print(
                f"Nothing was deliverable: {waiting.deferred:,} messages are deferred until "
                f"quiet hours end (the first at {waiting.deferred_from:%Y-%m-%d %H:%M} UTC)"
                + (f"; {waiting.queued:,} wait for a retry." if waiting.queued else ".")
            )
        elif waiting.queued:
            out.print(f"Nothing was deliverable: {waiting.queued:,} messages wait for a retry.")
        else:
            out.print("Nothing was deliverable: the outbox has no queued messages.")


@click.command("pause")
@config_option
@handles_errors
def pause_command(config_path: Path) -> None:
    """Stop all delivery now (the kill switch); runs still plan and queue messages.

    Example: campaign pause
    """
    from campaigns.config import load_config
    from campaigns.delivery.control import pause_workspace

    config = load_config(config_path)
    since = pause_workspace(config, datetime.now(UTC).replace(tzinfo=None))
    console().print(
        f"Delivery paused since {since:%Y-%m-%d %H:%M:%S} UTC: runs and workers send nothing "
        "until campaign resume."
    )


@click.command("resume")
@config_option
@handles_errors
def resume_command(config_path: Path) -> None:
    """Undo campaign pause: the next run or worker delivers what is queued.

    Example: campaign resume
    """
    from campaigns.config import load_config
    from campaigns.delivery.control import resume_workspace

    config = load_config(config_path)
    since, queued = resume_workspace(config)
    if since is None:
        console().print(f"Delivery was not paused; {queued:,} messages queued.")
    else:
        console().print(
            f"Delivery resumed (paused since {since:%Y-%m-%d %H:%M:%S} UTC); "
            f"{queued:,} messages queued."
        )


@click.command("serve")
@config_option
@click.option(
    "--poll",
    type=click.FloatRange(min=0.05),
    default=5.0,
    show_default=True,
    help="Seconds between checks of config.toml for changes.",
)
@click.option(
    "--check-every",
    type=click.FloatRange(min=0.1),
    default=15.0,
    show_default=True,
    help="Minutes between runs of campaigns with data-driven triggers (segment, inactive, event).",
)
@handles_errors
def serve_command(config_path: Path, poll: float, check_every: float) -> None:
    """Run the scheduler daemon: each campaign runs when its trigger fires, until SIGTERM.

    Example: campaign serve -c config.toml
    """
    from campaigns.scheduler import serve

    out = console()

    def started(jobs: list[JobInfo]) -> None:
        out.print(f"Serving {config_path} with {len(jobs)} jobs (SIGTERM or Ctrl-C stops).")
        for job in jobs:
            when = f"{job.next_run:%Y-%m-%d %H:%M} UTC" if job.next_run else "never"
            out.print(f"  {job.campaign}: next run {when}")

    def event(line: str) -> None:
        out.print(f"{datetime.now(UTC):%Y-%m-%d %H:%M:%S} {line}")

    with stop_on_signals() as stop:
        serve(
            config_path,
            stop,
            poll_seconds=poll,
            check_every=timedelta(minutes=check_every),
            on_event=event,
            on_start=started,
        )
    out.print("Stopped.")


@click.command("retry")
@config_option
@click.option("--campaign", "campaign", metavar="NAME", help="Only this campaign's messages.")
@click.option(
    "--status",
    "statuses",
    type=click.Choice(("failed", "suppressed")),
    multiple=True,
    default=("failed",),
    show_default=True,
    help="Requeue messages in this state (repeat for several).",
)
@handles_errors
def retry_command(config_path: Path, campaign: str | None, statuses: tuple[str, ...]) -> None:
    """Put failed messages back in the queue; the next run or worker delivers them.

    Use it after fixing what made them fail for good (an SMTP password, a receiver that was
    down longer than retry_for). Their attempts start afresh; customers who are suppressed are
    still never sent to. Messages that failed to render (render_failed) are never requeued: they
    would fail again; fix the template or the data instead.

    Example: campaign retry --campaign winback --status failed
    """
    from campaigns.config import load_config
    from campaigns.delivery.control import requeue_workspace

    config = load_config(config_path)
    count = requeue_workspace(config, statuses, campaign)
    which = " or ".join(statuses)
    scope = f" of campaign {campaign}" if campaign else ""
    console().print(
        f"Requeued {count:,} {which} message{'s' if count != 1 else ''}{scope}; "
        "the next run or worker delivers them."
    )
