"""``campaign init``, ``campaign check`` and ``campaign status``."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from cli.errors import handles_errors
from cli.options import at_option, config_option
from cli.output import console, format_option, print_json, table

if TYPE_CHECKING:
    from rich.console import Console

    from campaigns.status import Status


@click.command("init")
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False))
@handles_errors
def init_command(directory: Path) -> None:
    """Create a workspace in DIRECTORY: config.toml and templates/, ready for the demo shop.

    Example: campaign init my-campaigns && cd my-campaigns && campaign run
    """
    from campaigns.workspace import init_workspace

    written = init_workspace(directory)
    out = console()
    for path in written:
        out.print(f"created {path}")
    first = "campaign check && campaign run --dry-run"
    if directory.resolve() == Path.cwd().resolve():
        out.print(f"Next: {first}")
    else:
        out.print(f"Next: cd {directory} && {first}")


@click.command("check")
@config_option
@format_option
@handles_errors
def check_command(config_path: Path, output_format: str) -> None:
    """Validate config.toml and compile and trial-render every campaign's template.

    Example: campaign check -c config.toml
    """
    from campaigns.check import check_workspace
    from campaigns.config import load_config

    config = load_config(config_path)
    report = check_workspace(config)
    if output_format == "json":
        print_json(
            {
                "config": str(config_path),
                "ok": True,
                "campaigns": len(config.campaigns),
                "journeys": len(config.journeys),
                "templates": len(set(report.templates)),
                "channels": len(config.channels),
                "warnings": list(report.warnings),
            }
        )
        return
    out = console()
    for warning in report.warnings:
        out.print(f"warning: {warning}")
    journeys = len(config.journeys)
    shown = f"{journeys} journey{'s' if journeys != 1 else ''}, " if journeys else ""
    out.print(
        f"{config_path}: OK ({len(config.campaigns)} campaigns, {shown}"
        f"{len(set(report.templates))} templates, {len(config.channels)} channels)"
    )


@click.command("status")
@config_option
@at_option
@format_option
@handles_errors
def status_command(config_path: Path, at: datetime | None, output_format: str) -> None:
    """Show the store: customers, segments, the last runs, the outbox and the next fire times.

    Example: campaign status --format json
    """
    from campaigns.config import load_config
    from campaigns.status import workspace_status

    config = load_config(config_path)
    now = at or datetime.now(UTC).replace(tzinfo=None)
    status = workspace_status(config, now)
    if output_format == "json":
        print_json(status.to_json())
        return
    print_status(console(), status)


def print_status(out: Console, status: Status) -> None:
    """The status as text: the store, segments, runs, outbox, delivery and next fire times."""
    out.print(f"Store: {status.store}")
    if not status.exists:
        out.print("The store is empty: the first campaign run creates it and loads the data.")
    out.print(f"Customers: {status.customers:,}")
    if status.model_version is None:
        out.print("Segments: none yet (the first run fits the model)")
    else:
        segments = table(
            "id>", "name", "customers>", title=f"Segments (model v{status.model_version})"
        )
        for sid, name, size in status.segments:
            segments.add_row(str(sid), name, f"{size:,}")
        out.print(segments)
    if status.runs:
        errors = any(run.error for run in status.runs)
        # Suppressed and render-failed columns only when some run has them.
        rare = [
            n
            for n in ("suppressed", "render_failed")
            if any(getattr(run.counts, n) for run in status.runs)
        ]
        numbers = ("planned", "sent", "deferred", "queued", "failed", *rare, "held_out")
        runs = table(
            "run>",
            "at",
            "status",
            *(f"{n.replace('_', ' ')}>" for n in numbers),
            *(("error",) if errors else ()),
            title="Last runs (messages as the outbox holds them now)",
        )
        for run in status.runs:
            runs.add_row(
                str(run.run_id),
                f"{run.at:%Y-%m-%d %H:%M}",
                run.status,
                *(f"{getattr(run.counts, n):,}" for n in numbers),
                *((run.error or "",) if errors else ()),
            )
        out.print(runs)
    else:
        out.print("Runs: none yet")
    box = status.outbox
    if box.planned or box.held_out:
        parts = [
            f"{getattr(box, n):,} {n.replace('_', ' ')}"
            for n in ("sent", "deferred", "queued", "failed", "suppressed", "render_failed")
            if getattr(box, n) or n in ("sent", "queued")
        ]
        line = f"Outbox: {box.planned:,} messages: {', '.join(parts)}"
        if box.deferred_until is not None:
            line += f" (deferred until {box.deferred_until:%Y-%m-%d %H:%M} UTC at the latest)"
        if box.held_out:
            line += f"; {box.held_out:,} customers held out"
        out.print(line + ".")
    else:
        out.print("Outbox: empty.")
    if status.paused_since is not None:
        out.print(
            f"Delivery: paused since {status.paused_since:%Y-%m-%d %H:%M:%S} UTC "
            "(campaign resume to send)"
        )
    else:
        out.print("Delivery: running")
    if status.failures:
        failures = table(
            "campaign",
            "recipient",
            "channel",
            "status",
            "attempts>",
            "error",
            title="Last delivery errors",
        )
        for f in status.failures:
            failures.add_row(f.campaign, f.recipient, f.channel, f.status, str(f.attempts), f.error)
        out.print(failures)
    fires = table("campaign", "trigger", "next", title="Next fire times (UTC)")
    for fire in status.next_fires:
        if fire.at is not None:
            shown = f"{fire.at:%Y-%m-%d %H:%M}"
        else:
            shown = "never" if fire.trigger in {"schedule", "once"} else "each run, per customer"
        fires.add_row(fire.campaign, fire.trigger, shown)
    out.print(fires)
