"""``campaign load`` and ``campaign demo``: fill the store."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click

from campaigns.config import load_config
from campaigns.data import reload_source, replace_with_demo
from cli.errors import handles_errors
from cli.options import config_option
from cli.output import console


@click.command("load")
@config_option
@handles_errors
def load_command(config_path: Path) -> None:
    """Re-read the configured data source into the store (replacing what it held).

    Example: campaign load -c config.toml
    """
    config = load_config(config_path)
    shop = reload_source(config, datetime.now(UTC).replace(tzinfo=None))
    out = console()
    out.print(
        f"Loaded {len(shop.customers):,} customers, {len(shop.products):,} products, "
        f"{len(shop.transactions):,} transaction lines."
    )
    if shop.quarantined:
        reasons = ", ".join(f"{r} {n:,}" for r, n in sorted(shop.quarantined.items()))
        out.print(f"Quarantined rows: {reasons}")


@click.command("demo")
@config_option
@click.option("--customers", type=click.IntRange(min=1), default=5000, show_default=True)
@click.option("--seed", type=int, default=7, show_default=True)
@handles_errors
def demo_command(config_path: Path, customers: int, seed: int) -> None:
    """Fill the store with a freshly generated demo shop of any size.

    Example: campaign demo --customers 100000 --seed 7
    """
    config = load_config(config_path)
    end = datetime.now(UTC).replace(tzinfo=None, hour=0, minute=0, second=0, microsecond=0)
    shop = replace_with_demo(config, customers, seed, end)
    console().print(
        f"Generated the demo shop: {len(shop.customers):,} customers, "
        f"{len(shop.products):,} products, {len(shop.transactions):,} transaction lines "
        f"up to {end:%Y-%m-%d}."
    )
