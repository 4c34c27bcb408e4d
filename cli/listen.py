"""``campaign listen``: the engagement endpoint (tracked links, opens, unsubscribes, webhooks)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click

from cli.errors import handles_errors
from cli.options import AtTime, config_option
from cli.output import console


@click.command("listen")
@config_option
@click.option(
    "--http",
    "bind",
    default="127.0.0.1:8080",
    show_default=True,
    metavar="HOST:PORT",
    help="Address to serve on; behind a proxy or load balancer, the [tracking] base_url.",
)
@handles_errors
def listen_command(config_path: Path, bind: str) -> None:
    """Serve the engagement endpoint: tracked links, open pixels, one-click unsubscribe and the
    preferences page, and provider webhooks, recorded in the store, until SIGTERM or Ctrl-C.

    Needs a [tracking] section and its signing secret. Run one process on SQLite, or several
    behind a load balancer on PostgreSQL (see docs/engagement.md).

    Example: campaign listen --http 0.0.0.0:8080
    """
    from campaigns.config import load_config
    from campaigns.engagement.server import parse_bind, serve

    try:
        host, port = parse_bind(bind)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--http") from None
    serve(load_config(config_path), host, port)


@click.command("simulate")
@click.argument("campaign")
@config_option
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--at",
    type=AtTime(),
    default=None,
    help="A journey only: answer the messages created by this time, as of this time.",
)
@handles_errors
def simulate_command(campaign: str, config_path: Path, seed: int, at: datetime | None) -> None:
    """Demo: simulated people open, click and unsubscribe from CAMPAIGN's sent messages (or a
    journey's), and a simulated provider reports deliveries, bounces and complaints, all as
    HTTP requests to the real endpoint (served on a free local port meanwhile).

    Customers who bought after the message click far more often than the others; run
    `campaign experiment simulate EXPERIMENT` first to give an experiment's customers their
    purchases. A journey's customers are given theirs here; between `campaign run --at` runs,
    `--at` makes its people answer at that time (a wait_for sees their clicks at the next run).

    Example: campaign simulate newsletter && campaign report newsletter
    """
    from campaigns.config import load_config
    from campaigns.engagement.simulate import simulate_engagement

    result = simulate_engagement(load_config(config_path), campaign, seed, at)
    out = console()
    out.print(
        f"Simulated people answered {result.messages:,} sent messages of {campaign} through "
        f"the endpoint: {result.summary()}.",
        markup=False,
        soft_wrap=True,
    )
    for note in result.notes:
        out.print(f"- {note}", markup=False, soft_wrap=True)
    if result.failures:
        out.print(f"{len(result.failures):,} requests failed:", markup=False)
        for failure in result.failures[:10]:
            out.print(f"  {failure}", markup=False, soft_wrap=True)
        raise SystemExit(1)
