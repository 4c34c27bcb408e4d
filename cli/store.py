"""``campaign migrate``: upgrade the store's schema."""

from __future__ import annotations

from pathlib import Path

import click

from cli.errors import handles_errors
from cli.options import config_option
from cli.output import console, format_option, print_json


@click.command("migrate")
@config_option
@click.option("--check", is_flag=True, help="Only say what is pending; exit 1 if anything is.")
@format_option
@handles_errors
def migrate_command(config_path: Path, check: bool, output_format: str) -> None:
    """Upgrade the store to this version's schema, keeping every row (back it up first).

    Runs also apply migrations that only add tables or columns; this command applies the rest.
    It holds the run lock, so no run or load writes while tables change.

    Example: campaign migrate --check && campaign migrate
    """
    from campaigns.config import load_config
    from campaigns.migrations import migrate_store

    report = migrate_store(load_config(config_path), check_only=check)
    before = report.before
    pending = [{"id": r.id, "title": r.title, "online_safe": r.online_safe} for r in before.pending]
    if output_format == "json":
        print_json(
            {
                "revision_before": before.current,
                "head": before.head,
                "pending": pending,
                "applied": [r.id for r in report.applied],
                "release_0_1_0_store": before.legacy,
            }
        )
    else:
        out = console()
        was = f"revision {before.current}" if before.current is not None else "no revision (new)"
        if before.legacy:
            was += " (written by release 0.1.0)"
        if before.up_to_date:
            out.print(f"The store is up to date (revision {before.head}).")
        elif check:
            out.print(f"The store is at {was}; {len(pending)} migration(s) pending:")
            for revision in before.pending:
                out.print(f"  {revision.id}  {revision.title}")
        else:
            out.print(f"Migrated the store from {was} to revision {before.head}:")
            for revision in report.applied:
                out.print(f"  {revision.id}  {revision.title}")
    if check and not before.up_to_date:
        raise click.exceptions.Exit(1)
