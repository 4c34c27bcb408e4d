"""``campaign run``."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click
from rich.console import Console

from campaigns.config import load_config
from campaigns.run import RunResult, run_campaigns
from cli.errors import handles_errors
from cli.options import at_option, config_option
from cli.output import console, progress_bars, table


@click.command("run")
@config_option
@at_option
@click.option("--dry-run", is_flag=True, help="Plan and render, but write and send nothing.")
@click.option("--campaign", "only", metavar="NAME", help="Run only this campaign.")
@handles_errors
def run_command(config_path: Path, at: datetime | None, dry_run: bool, only: str | None) -> None:
    """Run every due campaign: segment, plan, render, send or export, each message once.

    Example: campaign run --at 2026-11-23T10:00 --dry-run
    """
    config = load_config(config_path)
    out = console()
    with progress_bars(out) as progress:
        result = run_campaigns(config, at=at, dry_run=dry_run, only=only, progress=progress)
    print_result(out, result)


def _relative(destinations: str) -> str:
    """Destinations under the current folder, shown relative to it."""
    shown = []
    for destination in filter(None, destinations.split(", ")):
        path = Path(destination)
        shown.append(
            str(path.relative_to(Path.cwd())) if path.is_relative_to(Path.cwd()) else destination
        )
    return ", ".join(shown)


def print_result(out: Console, result: RunResult) -> None:
    """The run summary: a table per campaign and segment, notes, and the totals."""
    title = "Dry run" if result.dry_run else f"Run {result.run_id}"
    out.print(f"{title} at {result.at:%Y-%m-%d %H:%M} UTC")
    if result.loaded:
        out.print("Loaded the data source into the store (first use).")
    fitted = "fitted now" if result.model_fitted else "stored"
    out.print(f"Segmentation model v{result.model_version} ({fitted}).")
    rows = table(
        "campaign", "segment", "audience>", "messages>", "status", "channel", "destination"
    )
    for row in result.rows:
        rows.add_row(
            row.campaign,
            row.segment,
            f"{row.audience:,}",
            f"{row.messages:,}",
            row.status,
            row.channel,
            _relative(row.destination),
        )
    out.print(rows)
    for note in result.notes:
        out.print(f"- {note}")
    if result.dry_run:
        out.print(f"Would queue {result.new_messages:,} new messages.")
    elif result.new_messages == 0:
        out.print("Nothing new to send.")
    else:
        out.print(
            f"Queued {result.new_messages:,} new messages; sent {result.sent:,}"
            + (f", {result.failed:,} failed" if result.failed else "")
            + (f", {result.retrying:,} to retry" if result.retrying else "")
            + "."
        )
