"""``campaign listen``: the engagement endpoint (tracked links, opens, unsubscribes, webhooks)."""

from __future__ import annotations

from pathlib import Path

import click

from cli.errors import handles_errors
from cli.options import config_option


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
