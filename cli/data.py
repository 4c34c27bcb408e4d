"""``campaign load`` and ``campaign demo`` fill the store; ``campaign data profile`` looks at it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click

from cli.errors import handles_errors
from cli.options import Group, at_option, config_option
from cli.output import console, format_option, print_json


@click.command("load")
@config_option
@handles_errors
def load_command(config_path: Path) -> None:
    """Re-read the configured data source into the store (replacing what it held).

    Example: campaign load -c config.toml
    """
    from campaigns.config import load_config
    from campaigns.data import reload_source

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
    from campaigns.config import load_config
    from campaigns.data import replace_with_demo

    config = load_config(config_path)
    end = datetime.now(UTC).replace(tzinfo=None, hour=0, minute=0, second=0, microsecond=0)
    shop = replace_with_demo(config, customers, seed, end)
    console().print(
        f"Generated the demo shop: {len(shop.customers):,} customers, "
        f"{len(shop.products):,} products, {len(shop.transactions):,} transaction lines "
        f"up to {end:%Y-%m-%d}."
    )


@click.group("data", cls=Group)
def data_group() -> None:
    """Look at the data before segmenting it.

    Example: campaign data profile --html profile.html
    """


@data_group.command("profile")
@config_option
@at_option
@click.option(
    "--html",
    "html_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Also write a self-contained HTML report (plots embedded) to this file.",
)
@format_option
@handles_errors
def profile_command(
    config_path: Path, at: datetime | None, html_path: Path | None, output_format: str
) -> None:
    """Profile the store's customers, products and transactions: types, missing values,
    duplicates, distributions, skew, outliers, correlations; for the transaction log its time
    range, orders per customer, revenue by month and returns. Warns when --at lies far beyond
    the last transaction.

    Example: campaign data profile --at 2011-12-10 --html profile.html
    """
    from rich.table import Table

    from campaigns.config import load_config
    from campaigns.data_profile.commands import profile_workspace
    from campaigns.data_profile.lines import number, summary_lines

    config = load_config(config_path)
    profile = profile_workspace(config, at)
    lines = summary_lines(profile)
    if html_path is not None:
        from campaigns.data_profile.html import render_html

        html_path.write_text(render_html(profile, lines), encoding="utf-8")
    if output_format == "json":
        print_json(profile)
        return
    out = console()
    for line in lines:
        if not line.startswith("Warning:"):
            out.print(line)
    for name, table in profile["tables"].items():
        if not table["rows"]:
            continue
        grid = Table(title=f"{name.capitalize()} columns")
        for column in (
            "column",
            "type",
            "missing",
            "distinct",
            "mean",
            "median",
            "min",
            "max",
            "skew",
            "outliers",
        ):
            grid.add_column(column, justify="left" if column in ("column", "type") else "right")
        for c in table["column_profiles"]:
            numeric = c["type"] == "number" and c.get("mean") is not None
            grid.add_row(
                c["name"],
                c["type"],
                f"{c['missing']:,}",
                f"{c['distinct']:,}",
                *(
                    (
                        number(c["mean"]),
                        number(c["median"]),
                        number(c["min"]),
                        number(c["max"]),
                        "" if c["skew"] is None else f"{c['skew']:.2f}",
                        f"{c['outliers']:,}",
                    )
                    if numeric
                    else ("",) * 6
                ),
            )
        out.print(grid)
    for line in lines:
        if line.startswith("Warning:"):
            out.print(line)
    if html_path is not None:
        out.print(f"Wrote {html_path}")
