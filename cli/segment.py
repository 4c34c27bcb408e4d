"""``campaign segment fit | assign | report``."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from cli.errors import handles_errors
from cli.options import Group, at_option, config_option
from cli.output import console, format_option, print_json

if TYPE_CHECKING:
    from rich.console import Console

    from campaigns.segments import FittedSegments


@click.group("segment", cls=Group)
def segment_group() -> None:
    """Fit, assign and report customer segments.

    Example: campaign segment fit && campaign segment report --html segments.html
    """


@segment_group.command("fit")
@config_option
@at_option
@handles_errors
def fit_command(config_path: Path, at: datetime | None) -> None:
    """Fit a new segmentation model version on the features at --at; ids stay stable.

    Example: campaign segment fit --at 2026-11-23
    """
    from campaigns.config import load_config
    from campaigns.segments import fit_segments

    config = load_config(config_path)
    model = fit_segments(config, at)
    out = console()
    data = _data(model)
    out.print(
        f"Segmentation model v{model.version}: {data['model']['algorithm']}, "
        f"{data['model']['k']} segments. {data['model']['k_reason']}."
    )
    _print_segments(out, data)
    for warning in model.warnings:
        out.print(f"Warning: {warning}")
    _print_search(out, data)
    if data["model"]["new_segments"]:
        new = ", ".join(str(i) for i in data["model"]["new_segments"])
        out.print(f"New segment ids (no match in the previous version): {new}")
    if data["migration"]:
        _print_migration(out, data)


@segment_group.command("assign")
@config_option
@at_option
@handles_errors
def assign_command(config_path: Path, at: datetime | None) -> None:
    """Assign every customer with the current model and record who entered or left a segment.

    Example: campaign segment assign --at 2026-11-23T09:00
    """
    from rich.table import Table

    from campaigns.config import load_config
    from campaigns.segments import assign_segments

    config = load_config(config_path)
    result = assign_segments(config, at)
    out = console()
    fitted = "fitted now" if result.model.fitted_now else "stored"
    out.print(f"Segmentation model v{result.model.version} ({fitted}).")
    table = Table()
    table.add_column("segment")
    table.add_column("customers", justify="right")
    for segment_id, size in result.sizes.items():
        table.add_row(f"{segment_id} {result.model.names[segment_id]}", f"{size:,}")
    out.print(table)
    if result.not_segmented:
        out.print(
            f"{result.not_segmented:,} customers are not segmented (no usable purchase up to "
            '--at); campaigns for every segment ("*") still reach them.'
        )
    out.print(f"{result.entered:,} customers entered a segment, {result.exited:,} left one.")


@segment_group.command("report")
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
def report_command(
    config_path: Path, at: datetime | None, html_path: Path | None, output_format: str
) -> None:
    """Report the current segmentation model: segments, profiles, choice of k, stability.

    The plots use the features at --at (default: when the model was fitted).

    Example: campaign segment report --html segments.html --format json
    """
    from campaigns.config import load_config
    from campaigns.segments import segment_report

    config = load_config(config_path)
    report = segment_report(config, at)
    if html_path is not None:
        from segmentation.html import render_html

        html_path.write_text(
            render_html(
                report.model.estimator, report.data, report.features, config.segmentation.seed
            ),
            encoding="utf-8",
        )
    if output_format == "json":
        print_json(report.data)
        return
    out = console()
    model = report.data["model"]
    out.print(
        f"Segmentation model v{model['version']}: {model['algorithm']}, {model['k']} segments, "
        f"fitted at {model['fitted_at'].replace('T', ' ')} UTC. {model['k_reason']}."
    )
    _print_segments(out, report.data)
    out.print(f"Names: {report.data['naming']}.")
    _print_not_segmented(out, report.data)
    _print_search(out, report.data)
    if report.data["migration"]:
        _print_migration(out, report.data)
    _print_makeup(out, report.data)
    _print_history(out, report.data)
    for warning in report.data["warnings"]:
        out.print(f"Warning: {warning}")
    if html_path is not None:
        out.print(f"Wrote {html_path}")


@segment_group.command("suggest")
@config_option
@at_option
@click.option(
    "--output",
    "output_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Also write the drafts to this file (to review, then append to config.toml).",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="json: per draft its play, reasoning, experiment sizing, TOML and template stubs.",
)
@handles_errors
def suggest_command(
    config_path: Path, at: datetime | None, output_path: Path | None, output_format: str
) -> None:
    """Suggest a first campaign per segment of the current model, as TOML drafts to paste.

    Each draft has a trigger, a condition, caps and an experiment with a holdout sized as
    'campaign experiment plan' sizes it, and one sentence of reasoning; the template stubs it
    names are written into the templates folder (never over an existing file), so the drafts
    pass 'campaign check' as written.

    Example: campaign segment suggest --output drafts.toml && cat drafts.toml >> config.toml
    """
    from campaigns.config import load_config
    from campaigns.playbook import suggest_campaigns

    config = load_config(config_path)
    result = suggest_campaigns(config, at)
    if output_path is not None:
        output_path.write_text(result.toml, encoding="utf-8")
    if output_format == "json":
        print_json(
            {
                "model_version": result.model_version,
                "at": result.at.isoformat(),
                "drafts": [
                    {
                        "name": d.name,
                        "segment_id": d.segment_id,
                        "segment": d.segment,
                        "play": d.play,
                        "reasoning": d.reasoning,
                        "baseline_rate": d.baseline_rate,
                        "minimum_detectable_effect": d.minimum_detectable_effect,
                        "holdout": d.holdout,
                        "toml": d.toml,
                        "templates": sorted(d.templates),
                    }
                    for d in result.drafts
                ],
                "templates_written": [str(p) for p in result.written],
            }
        )
        return
    click.echo(f"# Suggested campaigns for segmentation model v{result.model_version}.\n")
    click.echo(result.toml, nl=False)
    for path in result.written:
        click.echo(f"# Wrote {path}")
    if output_path is not None:
        click.echo(f"# Wrote {output_path}")


def _data(model: FittedSegments) -> dict[str, Any]:
    from segmentation.report import report_data

    return report_data(
        model.estimator,
        model.profiles,
        model.version,
        model.created_at,
        model.migration,
        model.new_ids,
    )


def _print_segments(out: Console, data: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table(title="Segments")
    for column in ("id", "name", "customers", "share", "revenue"):
        table.add_column(column, justify="left" if column == "name" else "right")
    for segment in data["segments"]:
        revenue = segment["revenue_share"]
        table.add_row(
            str(segment["id"]),
            segment["name"],
            f"{segment['size']:,}",
            f"{segment['share']:.1%}",
            "" if revenue is None else f"{revenue:.1%}",
        )
    out.print(table)


def _print_not_segmented(out: Console, data: dict[str, Any]) -> None:
    left_out = data["not_segmented"]
    if not left_out["customers"]:
        return
    shown = ", ".join(left_out["customer_ids"])
    more = left_out["customers"] - len(left_out["customer_ids"])
    out.print(
        f"Not segmented: {left_out['customers']:,} customers, {left_out['reason']}: {shown}"
        + (f" and {more:,} more." if more else ".")
        + ' Campaigns for every segment ("*") still reach them.'
    )


def _print_makeup(out: Console, data: dict[str, Any]) -> None:
    from rich.table import Table

    names = {str(s["id"]): f"{s['id']} {s['name']}" for s in data["segments"]}
    for part in data["makeup"]:
        table = Table(title=f"Make-up by {part['column']} (share of each segment)")
        table.add_column(part["column"])
        segments = list(part["shares"])
        for segment in segments:
            table.add_column(names.get(segment, segment), justify="right")
        for category in part["categories"]:
            table.add_row(
                category, *(f"{part['shares'][s].get(category, 0.0):.1%}" for s in segments)
            )
        out.print(table)
        if part["p_value"] is not None:
            caution = (
                f"; {part['low_expected_share']:.0%} of cells expect fewer than 5 customers, "
                "so read the p-value with care"
                if part["low_expected_share"] > 0.2
                else ""
            )
            out.print(
                f"Chi-square test of independence: chi2 = {part['chi2']:,.1f}, dof = "
                f"{part['dof']}, p = {part['p_value']:.3g}, Cramér's V = "
                f"{part['cramers_v']:.2f}{caution}."
            )
    if data["makeup_skipped"]:
        out.print(
            "Not broken down: "
            + "; ".join(f"{s['column']} ({s['reason']})" for s in data["makeup_skipped"])
            + "."
        )


def _print_history(out: Console, data: dict[str, Any]) -> None:
    from rich.table import Table

    history = data["history"]
    if len(history) < 2:
        return
    segments = sorted({s for row in history for s in row["sizes"]}, key=_id_key)
    table = Table(title="Segment sizes over time (after each run)")
    table.add_column("at")
    for segment in segments:
        table.add_column(segment, justify="right")
    for row in history[-10:]:
        table.add_row(
            row["at"][:16].replace("T", " "),
            *(f"{row['sizes'].get(s, 0):,}" for s in segments),
        )
    out.print(table)


def _print_search(out: Console, data: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table(title="Quality by k (* chosen)")
    for column in (
        "k",
        "inertia",
        "silhouette",
        "Calinski-Harabasz",
        "Davies-Bouldin",
        "stability (ARI)",
        "held-out (ARI)",
    ):
        table.add_column(column, justify="right")
    for score in data["k_search"]:
        mark = "*" if score["k"] == data["chosen_k"] else ""
        table.add_row(
            f"{score['k']}{mark}",
            _number(score["inertia"], ",.0f"),
            _number(score["silhouette"], ".3f"),
            _number(score["calinski_harabasz"], ",.1f"),
            _number(score["davies_bouldin"], ".3f"),
            _number(score["stability"], ".3f")
            + ("" if score["stability_std"] is None else f" ± {score['stability_std']:.3f}"),
            _number(score["holdout"], ".3f"),
        )
    out.print(table)
    if data["knee"] is not None:
        out.print(f"Elbow (knee of the inertia curve): k = {data['knee']}")


def _print_migration(out: Console, data: dict[str, Any]) -> None:
    from rich.table import Table

    migration: dict[str, dict[str, int]] = data["migration"]
    news = sorted({n for row in migration.values() for n in row}, key=_id_key)
    table = Table(title="Customers moved (rows: previous segment, columns: new segment)")
    table.add_column("from")
    for new in news:
        table.add_column(new, justify="right")
    for old in sorted(migration, key=_id_key):
        table.add_row(old, *(f"{migration[old].get(n, 0):,}" for n in news))
    out.print(table)


def _id_key(value: str) -> tuple[int, str]:
    return (int(value), "") if value.isdigit() else (10**9, value)


def _number(value: float | None, spec: str) -> str:
    return "" if value is None else format(value, spec)
