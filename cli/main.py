"""The ``campaign`` command group: thin commands over the library."""

from __future__ import annotations

import click

from cli.data import data_group, demo_command, load_command
from cli.delivery import (
    pause_command,
    resume_command,
    retry_command,
    serve_command,
    worker_command,
)
from cli.experiment import experiment_group, report_command, track_command
from cli.listen import listen_command, simulate_command
from cli.model import model_group, recommend_group
from cli.options import Group
from cli.plan import forecast_command, plan_command, preview_command
from cli.run import run_command
from cli.segment import segment_group
from cli.store import migrate_command
from cli.workspace import check_command, init_command, status_command


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="campaign")
def cli() -> None:
    """Marketing campaigns as files in git: segments, rules, templates, delivery, A/B tests."""


for command in (
    init_command,
    check_command,
    run_command,
    plan_command,
    preview_command,
    forecast_command,
    status_command,
    load_command,
    demo_command,
    migrate_command,
    data_group,
    worker_command,
    pause_command,
    resume_command,
    retry_command,
    serve_command,
    listen_command,
    simulate_command,
    report_command,
    track_command,
    experiment_group,
    segment_group,
    model_group,
    recommend_group,
):
    cli.add_command(command)


def main() -> None:
    """Console-script entry point."""
    cli()
