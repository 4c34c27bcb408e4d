"""``campaign run``."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from cli.errors import handles_errors
from cli.options import at_option, config_option
from cli.output import console, format_option, print_json, progress_bars, table

if TYPE_CHECKING:
    from rich.console import Console

    from campaigns.summary import RunResult


@click.command("run")
@config_option
@at_option
@click.option("--dry-run", is_flag=True, help="Plan and render, but write and send nothing.")
@click.option("--campaign", "only", metavar="NAME", help="Run only this campaign.")
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    metavar="N",
    help="Render and deliver with N local processes (instead of render_processes); they "
    "share the outbox as campaign worker processes do.",
)
@format_option
@handles_errors
def run_command(
    config_path: Path,
    at: datetime | None,
    dry_run: bool,
    only: str | None,
    workers: int,
    output_format: str,
) -> None:
    """Run every due campaign: segment, plan, render, send or export, each message once.

    Example: campaign run --at 2026-11-23T10:00 --dry-run
    """
    from campaigns.config import load_config
    from campaigns.run import run_campaigns

    config = load_config(config_path)
    out = console()
    with progress_bars(out) as progress:
        result = run_campaigns(
            config, at=at, dry_run=dry_run, only=only, progress=progress, workers=workers
        )
    if output_format == "json":
        print_json(result.to_json())
        return
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
    if result.nothing_due is not None:
        out.print(result.nothing_due[0].upper() + result.nothing_due[1:] + ".")
    else:
        fitted = "fitted now" if result.model_fitted else "stored"
        out.print(f"Segmentation model v{result.model_version} ({fitted}).")
    totals = result.totals
    # A dry run delivers nothing: its planned messages are deferred or queued. Columns that are
    # zero in every row are left out of the table (the JSON has them all).
    always = (
        ("planned", "deferred", "queued") if result.dry_run else ("planned", "sent", "deferred")
    )
    optional = [n for n in ("queued", "failed", "suppressed", "render_failed") if n not in always]
    numbers = [*always, *(n for n in optional if getattr(totals, n))]
    rows = [row for row in result.rows if row.segment]
    if rows:
        shown = table(
            "campaign",
            "segment",
            "audience>",
            "left out>",
            "held out>",
            *(f"{n.replace('_', ' ')}>" for n in numbers),
        )
        for row in rows:
            counts = row.counts
            shown.add_row(
                row.campaign,
                row.segment,
                f"{counts.audience:,}",
                f"{counts.left_out_total:,}",
                f"{counts.held_out:,}",
                *(f"{getattr(counts, n):,}" for n in numbers),
            )
        out.print(shown)
    for note in result.notes:
        out.print(f"- {note}")
    destinations: dict[str, str] = {}
    for row in result.rows:
        if row.destination:
            destinations[row.campaign] = _relative(row.destination)
    for campaign, where in destinations.items():
        sent = sum(r.counts.sent for r in result.rows if r.campaign == campaign)
        out.print(f"- {campaign}: {sent:,} sent to {where}")
    if result.sent_from_earlier_runs:
        out.print(
            f"Also sent {result.sent_from_earlier_runs:,} messages queued by earlier runs "
            "(deferred or retried)."
        )
    out.print(_closing_line(result))


def _closing_line(result: RunResult) -> str:
    totals = result.totals
    if totals.planned == 0:
        return "Nothing new to send." if not result.dry_run else "Would plan no new messages."
    if result.dry_run:
        return (
            f"Would plan {totals.planned:,} new messages: {totals.queued:,} to deliver now, "
            f"{totals.deferred:,} deferred until quiet hours end."
        )
    from campaigns.counts import fates_sentence

    return f"Planned {totals.planned:,} new messages: {fates_sentence(totals)}."
