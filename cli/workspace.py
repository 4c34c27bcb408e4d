"""``campaign init``, ``campaign check`` and ``campaign status``."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click
from rich.table import Table

from campaigns.check import check_workspace
from campaigns.config import load_config
from campaigns.status import workspace_status
from campaigns.workspace import init_workspace
from cli.errors import handles_errors
from cli.options import at_option, config_option
from cli.output import console


@click.command("init")
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False))
@handles_errors
def init_command(directory: Path) -> None:
    """Create a workspace in DIRECTORY: config.toml and templates/, ready for the demo shop.

    Example: campaign init my-campaigns && cd my-campaigns && campaign run
    """
    written = init_workspace(directory)
    out = console()
    for path in written:
        out.print(f"created {path}")
    out.print(f"Next: cd {directory} && campaign check && campaign run --dry-run")


@click.command("check")
@config_option
@handles_errors
def check_command(config_path: Path) -> None:
    """Validate config.toml and compile and trial-render every campaign's template.

    Example: campaign check -c config.toml
    """
    config = load_config(config_path)
    report = check_workspace(config)
    out = console()
    for warning in report.warnings:
        out.print(f"warning: {warning}")
    out.print(
        f"{config_path}: OK ({len(config.campaigns)} campaigns, "
        f"{len(set(report.templates))} templates, {len(config.channels)} channels)"
    )


@click.command("status")
@config_option
@at_option
@handles_errors
def status_command(config_path: Path, at: datetime | None) -> None:
    """Show the store: customers, segments, the last runs, the outbox and the next fire times.

    Example: campaign status
    """
    config = load_config(config_path)
    now = at or datetime.now(UTC).replace(tzinfo=None)
    status = workspace_status(config, now)
    out = console()
    out.print(f"Store: {status.store}")
    out.print(f"Customers: {status.customers:,}")
    if status.model_version is None:
        out.print("Segments: none yet (the first run fits the model)")
    else:
        segments = Table(title=f"Segments (model v{status.model_version})")
        segments.add_column("id", justify="right")
        segments.add_column("name")
        segments.add_column("customers", justify="right")
        for sid, name, size in status.segments:
            segments.add_row(str(sid), name, f"{size:,}")
        out.print(segments)
    runs = Table(title="Last runs")
    for column in ("run", "at", "status", "messages", "error"):
        runs.add_column(column)
    for run in status.runs:
        planned = sum(int(row.get("messages", 0)) for row in run.summary)
        runs.add_row(
            str(run.id), f"{run.at:%Y-%m-%d %H:%M}", run.status, f"{planned:,}", run.error or ""
        )
    out.print(runs)
    counts = ", ".join(f"{state} {n:,}" for state, n in sorted(status.outbox.items()))
    out.print(f"Outbox: {counts or 'empty'}")
    if status.paused_since is not None:
        out.print(
            f"Delivery: paused since {status.paused_since:%Y-%m-%d %H:%M:%S} UTC "
            "(campaign resume to send)"
        )
    else:
        out.print("Delivery: running")
    if status.failures:
        failures = Table(title="Last delivery errors")
        for column in ("campaign", "recipient", "channel", "status", "attempts", "error"):
            failures.add_column(column)
        for f in status.failures:
            failures.add_row(f.campaign, f.recipient, f.channel, f.status, str(f.attempts), f.error)
        out.print(failures)
    fires = Table(title="Next fire times (UTC)")
    fires.add_column("campaign")
    fires.add_column("trigger")
    fires.add_column("next")
    for name, kind, when in status.next_fires:
        if when is not None:
            shown = f"{when:%Y-%m-%d %H:%M}"
        else:
            shown = "never" if kind in {"schedule", "once"} else "each run, per customer"
        fires.add_row(name, kind, shown)
    out.print(fires)
