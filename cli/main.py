"""The ``campaign`` command group: thin commands over the library."""

from __future__ import annotations

import click

from cli.data import demo_command, load_command
from cli.run import run_command
from cli.workspace import check_command, init_command, status_command


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="campaign")
def cli() -> None:
    """Marketing campaigns as files in git: segments, rules, templates, delivery, A/B tests."""


for command in (
    init_command,
    check_command,
    run_command,
    status_command,
    load_command,
    demo_command,
):
    cli.add_command(command)


def main() -> None:
    """Console-script entry point."""
    cli()
