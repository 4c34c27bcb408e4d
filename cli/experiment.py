"""``campaign report``, ``campaign track`` and the ``campaign experiment`` group."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

import click
from rich.console import Console
from rich.table import Table

from campaigns.config import load_config
from campaigns.experiments.analysis import METRIC_NAMES, ExperimentAnalysis, format_p
from campaigns.experiments.commands import (
    experiment_report,
    plan,
    promote_variant,
    simulate,
    track,
)
from campaigns.experiments.report import to_json
from campaigns.experiments.stats import Interval
from campaigns.experiments.tracking import Kind
from cli.errors import handles_errors
from cli.options import config_option
from cli.output import console

#: At most this many refused rows are listed; the rest are counted.
_SHOWN_BAD_ROWS = 20


def _pct(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{100 * value:.{digits}f}%"


def _lift(value: float | None, ci: Interval | None) -> str:
    if value is None:
        return "–"
    shown = f"{100 * value:+.2f}"
    return shown if ci is None else f"{shown} [{100 * ci.low:+.2f}, {100 * ci.high:+.2f}]"


def _p(value: float | None) -> str:
    return "–" if value is None else ("<0.001" if value < 0.001 else f"{value:.3f}")


def print_report(out: Console, analysis: ExperimentAnalysis) -> None:
    """The report as terminal tables: the SRM check first, the verdict last."""
    metric = METRIC_NAMES[analysis.primary_metric]
    out.print(f"Experiment {analysis.experiment}: {metric}, control {analysis.control}")
    srm = analysis.srm
    if srm.mismatch:
        out.print(
            f"!! SAMPLE RATIO MISMATCH ({format_p(srm.p_value)}): the split does not match the "
            "configured weights; do not trust the figures below.",
            style="bold red",
        )
    elif srm.p_value is not None:
        out.print(f"Sample ratio check: OK ({format_p(srm.p_value)}, flagged below 0.001)")
    if not analysis.configured:
        out.print("Imported experiment: equal shares assumed for the sample ratio check.")
    arms = Table(title="Per arm")
    for column in ("arm", "exposures", "clicks", "CTR", "conversions", "rate", "revenue/exposure"):
        arms.add_column(column, justify="left" if column == "arm" else "right")
    for arm in analysis.arms:
        arms.add_row(
            arm.variant + (" (control)" if arm.is_control and arm.variant != "control" else ""),
            f"{arm.exposures:,}",
            f"{arm.clicks:,}",
            _pct(arm.ctr),
            f"{arm.conversions:,}",
            _pct(arm.conversion_rate),
            "–" if arm.revenue_per_exposure is None else f"{arm.revenue_per_exposure:.2f}",
        )
    if arms.row_count:
        out.print(arms)
    table = Table(title=f"{metric.capitalize()} against {analysis.control}")
    for column in (
        "arm",
        "lift, points [95% CI]",
        "relative [95% CI]",
        "p",
        "p (Holm)",
        "always-valid p [CI]",
        "P(beats control)",
    ):
        table.add_column(column, justify="left" if column == "arm" else "right")
    for arm in analysis.arms:
        primary = arm.primary
        if primary is None:
            continue
        rel = "–"
        if primary.rel_lift is not None:
            ci = primary.rel_lift_ci
            rel = f"{100 * primary.rel_lift:+.1f}%"
            if ci is not None:
                rel += f" [{100 * ci.low:+.1f}, {100 * ci.high:+.1f}]"
        sequential = "–"
        if arm.sequential is not None and arm.sequential.p_value is not None:
            sequential = _p(arm.sequential.p_value)
            if arm.sequential.ci is not None:
                ci = arm.sequential.ci
                sequential += f" [{100 * ci.low:+.2f}, {100 * ci.high:+.2f}]"
        table.add_row(
            arm.variant,
            _lift(primary.abs_lift, primary.abs_lift_ci),
            rel,
            _p(primary.p_value),
            _p(arm.p_value_adjusted),
            sequential,
            _pct(arm.prob_beat_control, 1),
        )
    if table.row_count:
        out.print(table)
    tests = sorted({a.primary.test for a in analysis.arms if a.primary and a.primary.test})
    if tests:
        out.print(
            f"Intervals: Newcombe (hybrid score). p: {', '.join(tests)} (Fisher's exact test when "
            "an expected cell is below 5),\nHolm-adjusted across variants. Always-valid p and CI: "
            "mixture SPRT, safe to check every day."
        )
    extra = Table(title="Revenue per exposure (Welch) and CUPED-adjusted lift")
    for column in (
        "arm",
        "revenue diff [95% CI]",
        "Welch p",
        "CUPED lift [95% CI]",
        "variance cut",
    ):
        extra.add_column(column, justify="left" if column == "arm" else "right")
    for arm in analysis.arms:
        if arm.primary is None:
            continue
        revenue = arm.revenue
        diff = "–"
        if revenue is not None and revenue.diff is not None:
            diff = f"{revenue.diff:+.2f}"
            if revenue.ci is not None:
                diff += f" [{revenue.ci.low:+.2f}, {revenue.ci.high:+.2f}]"
        cuped = arm.cuped
        extra.add_row(
            arm.variant,
            diff,
            _p(revenue.p_value if revenue else None),
            _lift(cuped.diff, cuped.ci) if cuped else "–",
            _pct(cuped.variance_reduction if cuped else None, 0),
        )
    if extra.row_count:
        out.print(extra)
    secondary = Table(title="Secondary metrics against control (not adjusted)")
    for column in ("arm", "metric", "lift, points [95% CI]", "p"):
        secondary.add_column(column, justify="left" if column in ("arm", "metric") else "right")
    for arm in analysis.arms:
        for name, comparison in arm.secondary:
            secondary.add_row(
                arm.variant,
                METRIC_NAMES[name],
                _lift(comparison.abs_lift, comparison.abs_lift_ci),
                _p(comparison.p_value),
            )
    if secondary.row_count:
        out.print(secondary)
    for note in analysis.notes:
        out.print(note)
    out.print(f"Verdict: {analysis.verdict}")


@click.command("report")
@click.argument("experiment")
@config_option
@click.option("--control", metavar="VARIANT", help="Compare with this arm (default: control).")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="Terminal tables, or the figures as JSON.",
)
@click.option(
    "--html",
    "html_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Also write a self-contained HTML report with plots to FILE.",
)
@handles_errors
def report_command(
    experiment: str,
    config_path: Path,
    control: str | None,
    output_format: str,
    html_path: Path | None,
) -> None:
    """Report an experiment: rates, lifts with intervals, p-values, SRM check and a verdict.

    Example: campaign report winback --html winback.html
    """
    config = load_config(config_path)
    analysis = experiment_report(config, experiment, control)
    if html_path is not None:
        from campaigns.experiments.html import render_html

        html_path.write_text(render_html(analysis), encoding="utf-8")
    if output_format == "json":
        click.echo(json.dumps(to_json(analysis), indent=2))
        return
    out = console()
    print_report(out, analysis)
    if html_path is not None:
        out.print(f"Wrote {html_path}")


@click.command("track")
@click.argument("kind", type=click.Choice(["clicks", "conversions", "exposures"]))
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@config_option
@handles_errors
def track_command(kind: str, file: Path, config_path: Path) -> None:
    """Import clicks, conversions or exposures from a CSV or JSON Lines FILE.

    Example: campaign track conversions shop-orders.csv
    """
    config = load_config(config_path)
    result = track(config, cast(Kind, kind), file)
    out = console()
    out.print(f"Imported {result.imported:,} {kind} from {file}.")
    if result.repeats:
        out.print(
            f"{result.repeats:,} repeat exposures not stored: a customer's first exposure counts."
        )
    if result.bad:
        out.print(f"{len(result.bad):,} rows refused:")
        for bad in result.bad[:_SHOWN_BAD_ROWS]:
            out.print(f"  {bad}")
        if len(result.bad) > _SHOWN_BAD_ROWS:
            out.print(f"  ... and {len(result.bad) - _SHOWN_BAD_ROWS:,} more")


@click.group("experiment")
def experiment_group() -> None:
    """Plan experiments and promote their winners.

    Example: campaign experiment plan winback --audience 20000
    """


@experiment_group.command("plan")
@click.argument("experiment")
@config_option
@click.option(
    "--baseline",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    help="Control's expected rate (default: the experiment's baseline_rate).",
)
@click.option(
    "--effect",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    help="Absolute lift to detect (default: minimum_detectable_effect).",
)
@click.option("--audience", type=click.IntRange(1), help="Customers you expect to expose.")
@handles_errors
def plan_command(
    experiment: str,
    config_path: Path,
    baseline: float | None,
    effect: float | None,
    audience: int | None,
) -> None:
    """Show the sample size an experiment needs, and what an audience can detect.

    Example: campaign experiment plan winback --effect 0.01 --audience 20000
    """
    config = load_config(config_path)
    result = plan(config, experiment, audience, baseline, effect)
    spec = result.spec
    out = console()
    out.print(
        f"Experiment {spec.name}: detect {100 * result.effect:.2f} points over a "
        f"{100 * result.baseline:.2f}% baseline, alpha {spec.alpha:g} (two-sided), power "
        f"{100 * spec.power:.0f}%"
    )
    table = Table()
    for column in ("variant", f"{spec.control} needs", "variant needs", "detectable lift"):
        table.add_column(column, justify="left" if column == "variant" else "right")
    for variant, needed in result.needed.items():
        found = result.detectable.get(variant)
        table.add_row(
            variant,
            "–" if needed.control is None else f"{needed.control:,}",
            "–" if needed.variant is None else f"{needed.variant:,}",
            "–" if found is None or found.effect is None else f"{100 * found.effect:.2f} points",
        )
    out.print(table)
    total = result.total_needed()
    if total is not None:
        out.print(f"Customers to expose in all (every arm, holdout included): {total:,}")


@experiment_group.command("promote")
@click.argument("experiment")
@click.argument("variant", required=False)
@config_option
@click.option("--undo", is_flag=True, help="Revert a promotion: the experiment runs again.")
@handles_errors
def promote_command(experiment: str, variant: str | None, config_path: Path, undo: bool) -> None:
    """Make VARIANT the campaign's message for everyone from now on (recorded; --undo reverts).

    Example: campaign experiment promote winback discount
    """
    if (variant is None) == (not undo):
        raise click.UsageError("give a VARIANT to promote, or --undo to revert")
    config = load_config(config_path)
    now = datetime.now(UTC).replace(tzinfo=None)
    previous = promote_variant(config, experiment, None if undo else variant, now)
    out = console()
    if undo:
        was = f" (was {previous})" if previous else " (nothing was promoted)"
        out.print(f"Experiment {experiment} runs again: variants are assigned as configured{was}.")
    else:
        out.print(
            f"Promoted {variant}: every customer of experiment {experiment} now gets it. "
            f"Undo with: campaign experiment promote {experiment} --undo"
        )


@experiment_group.command("simulate")
@click.argument("experiment")
@config_option
@click.option("--seed", type=int, default=0, show_default=True)
@handles_errors
def simulate_command(experiment: str, config_path: Path, seed: int) -> None:
    """Demo shop only: exposed customers buy as its known response model says.

    The purchases go into the transaction log (replacing an earlier simulation of EXPERIMENT),
    so the report can be checked against the true effects.

    Example: campaign experiment simulate winback && campaign report winback
    """
    config = load_config(config_path)
    count = simulate(config, experiment, seed)
    console().print(
        f"Simulated {count:,} purchases by customers exposed in {experiment} "
        "(the demo shop's response model)."
    )
