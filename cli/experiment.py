"""``campaign report``, ``campaign track`` and the ``campaign experiment`` group."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, cast

import click

from cli.errors import handles_errors
from cli.options import Group, config_option
from cli.output import console, format_option, print_json

if TYPE_CHECKING:
    from rich.console import Console

    from campaigns.experiments.analysis import ExperimentAnalysis
    from campaigns.experiments.stats import Interval
    from campaigns.experiments.tracking import ImportResult, Kind

#: What ``campaign track`` imports (:data:`campaigns.experiments.tracking.KINDS`, written out here
#: so that the command line starts without pandas; a test holds the two equal).
TRACKED = ("clicks", "conversions", "unsubscribes", "bounces", "complaints", "exposures")

#: At most this many refused rows are listed; the rest are counted.
_SHOWN_BAD_ROWS = 20


def _pct(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{100 * value:.{digits}f}%"


def _end(value: float, scale: float, digits: int) -> str:
    if value == float("inf"):
        return "∞"
    return f"{scale * value:+.{digits}f}"


def _ci(ci: Interval | None, scale: float = 100, digits: int = 2) -> str:
    return "" if ci is None else f" [{_end(ci.low, scale, digits)}, {_end(ci.high, scale, digits)}]"


def _lift(value: float | None, ci: Interval | None) -> str:
    if value is None:
        return "–"
    return f"{100 * value:+.2f}{_ci(ci)}"


def _p(value: float | None) -> str:
    return "–" if value is None else ("<0.001" if value < 0.001 else f"{value:.3f}")


def _count(value: int | None) -> str:
    return "–" if value is None else f"{value:,}"


_ADJUSTMENTS = {"holm": "Holm", "benjamini-hochberg": "Benjamini-Hochberg"}


def _design_line(analysis: ExperimentAnalysis) -> str:
    spec = analysis.spec
    assert spec is not None
    effect = analysis.minimum_detectable_effect
    family = len([a for a in analysis.arms if a.decision is not None])
    line = (
        f"Design: {spec.decision} decisions ({spec.alternative}"
        + (f", {_ADJUSTMENTS[spec.multiplicity]} across {family} variants" if family > 1 else "")
        + f"), alpha {analysis.alpha:g}"
    )
    if effect is not None:
        line += f", minimum detectable effect {100 * effect:.1f} points"
    horizon = analysis.horizon
    if horizon is not None and horizon.kind == "sample_size":
        line += (
            f"; horizon {horizon.planned_per_arm:,} exposures per arm "
            f"({horizon.reached_per_arm:,} so far)"
        )
    elif horizon is not None and horizon.kind == "duration":
        line += f"; horizon {horizon.planned_days} days (day {horizon.days} so far)"
    return line + "."


def print_report(out: Console, analysis: ExperimentAnalysis) -> None:
    """The report as terminal tables: design and SRM check first, the verdict last."""
    from rich.table import Table

    from campaigns.experiments.analysis import METRIC_NAMES, NOT_CHECKED, format_p
    from campaigns.experiments.stats import FISHER, Z_TEST

    metric = METRIC_NAMES[analysis.primary_metric]
    out.print(
        f"Experiment {analysis.experiment}: {metric} rate, control arm {analysis.control!r}",
        markup=False,
        soft_wrap=True,
    )
    spec = analysis.spec
    if spec is not None and spec.missing_design:
        out.print(
            f"Design not given: {', '.join(spec.missing_design)}. Add them to "
            f"[experiments.{analysis.experiment}] in config.toml; until then nothing is judged "
            "against an invented plan.",
            markup=False,
            soft_wrap=True,
        )
    if analysis.arms and spec is not None:
        out.print(_design_line(analysis), markup=False, soft_wrap=True)
    srm = analysis.srm
    if srm.mismatch:
        out.print(
            f"!! SAMPLE RATIO MISMATCH ({format_p(srm.p_value)}): the split does not match the "
            "planned shares; do not trust the figures below.",
            style="bold red",
            markup=False,
            soft_wrap=True,
        )
    elif srm.status == NOT_CHECKED and analysis.arms:
        out.print("Sample ratio check: not run (no planned shares).", markup=False, soft_wrap=True)
    elif srm.p_value is not None:
        out.print(
            f"Sample ratio check: OK ({format_p(srm.p_value)}, flagged below 0.001)",
            markup=False,
            soft_wrap=True,
        )
    arms = Table(title="Per arm (assigned = intent to treat, the decision's denominator)")
    for column in (
        "arm", "assigned", "delivered", "failed", "clicks", "CTR", "conversions", "rate",
        "revenue/assigned",
    ):  # fmt: skip
        arms.add_column(column, justify="left" if column == "arm" else "right")
    for arm in analysis.arms:
        delivery = arm.delivery
        arms.add_row(
            arm.variant + (" (control)" if arm.is_control and arm.variant != "control" else ""),
            f"{arm.exposures:,}",
            _count(delivery.delivered if delivery else None),
            _count(delivery.failed if delivery else None),
            f"{arm.clicks:,}",
            _pct(arm.ctr),
            f"{arm.conversions:,}",
            _pct(arm.conversion_rate),
            "–" if arm.revenue_per_exposure is None else f"{arm.revenue_per_exposure:.2f}",
        )
    if arms.row_count:
        out.print(arms)
    adjusted = spec.multiplicity if spec is not None else "holm"
    label = "Holm" if adjusted == "holm" else "BH"
    table = Table(title=f"{metric.capitalize()} against {analysis.control}")
    for column in (
        "arm",
        "lift, points [CI]",
        "relative [CI]",
        "p",
        f"p ({label})",
        f"always-valid p [CI] ({label})",
        "P(beats control)",
        "loss if shipped",
        "decision",
    ):
        table.add_column(column, justify="left" if column in ("arm", "decision") else "right")
    for arm in analysis.arms:
        primary = arm.primary
        if primary is None:
            continue
        rel = "–"
        if primary.rel_lift is not None:
            rel = f"{100 * primary.rel_lift:+.1f}%" + _ci(arm.rel_lift_ci_adjusted, digits=1)
        sequential = "–"
        if arm.sequential_p_adjusted is not None:
            sequential = _p(arm.sequential_p_adjusted) + _ci(arm.sequential_ci_adjusted)
        loss = arm.expected_loss
        table.add_row(
            arm.variant,
            _lift(primary.abs_lift, arm.abs_lift_ci_adjusted),
            rel,
            _p(primary.p_value),
            _p(arm.p_value_adjusted) if arm.decision is not None else "–",
            sequential if arm.decision is not None else "–",
            _pct(arm.prob_beat_control, 1),
            "–" if loss is None else f"{100 * loss.choose_variant:.2f} pts",
            arm.decision.action if arm.decision is not None else "–",
        )
    if table.row_count:
        out.print(table)
    tests = {a.primary.test for a in analysis.arms if a.primary and a.primary.test}
    if tests:
        used = (
            "Fisher's exact test (an expected cell is below 5)"
            if tests == {FISHER}
            else f"{Z_TEST} (Fisher's exact test when an expected cell is below 5)"
        )
        out.print(
            f"p: {used}. "
            "Intervals: score intervals that invert the\nz-test (relative: risk ratio), at the "
            "adjusted level. Always-valid p and CI: mixture SPRT, safe to check every day.\n"
            "Loss if shipped: expected conversion given up if the variant is in fact worse "
            "(Bayesian, Beta(1, 1) priors).",
            markup=False,
            soft_wrap=True,
        )
    _print_extra(out, analysis)
    for note in analysis.notes:
        out.print(note, markup=False, soft_wrap=True)
    out.print(f"Verdict: {analysis.verdict}", markup=False, soft_wrap=True)


def _print_extra(out: Console, analysis: ExperimentAnalysis) -> None:
    from rich.table import Table

    from campaigns.experiments.analysis import METRIC_NAMES
    from campaigns.experiments.guardrails import METRIC_LABELS

    extra = Table(title="Revenue per assigned unit (Welch), CUPED lift, orders per clicker")
    for column in (
        "arm",
        "revenue diff [95% CI]",
        "Welch p",
        "CUPED lift [95% CI]",
        "variance cut",
        "orders/clicker diff [CI]",
    ):
        extra.add_column(column, justify="left" if column == "arm" else "right")
    for arm in analysis.arms:
        if arm.primary is None:
            continue
        revenue, cuped, ratio = arm.revenue, arm.cuped, arm.orders_per_clicker
        if (revenue is None or revenue.p_value is None) and cuped is None and ratio is None:
            continue  # nothing measured beyond the primary metric
        diff = "–"
        if revenue is not None and revenue.diff is not None:
            diff = f"{revenue.diff:+.2f}" + _ci(revenue.ci, scale=1)
        extra.add_row(
            arm.variant,
            diff,
            _p(revenue.p_value if revenue else None),
            _lift(cuped.diff, cuped.ci) if cuped else "–",
            _pct(cuped.variance_reduction if cuped else None, 0),
            "–"
            if ratio is None or ratio.diff is None
            else f"{ratio.diff:+.3f}" + _ci(ratio.ci, scale=1, digits=3),
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
    guard = Table(title="Guardrails (one-sided: is the variant's rate higher?)")
    for column in ("arm", "metric", "control", "variant", "p", "status"):
        guard.add_column(column, justify="left" if column in ("arm", "metric") else "right")
    for arm in analysis.arms:
        for g in arm.guardrails:
            if g.control.successes or g.variant.successes:
                guard.add_row(
                    arm.variant,
                    METRIC_LABELS[g.metric],
                    _pct(g.control.rate, 3),
                    _pct(g.variant.rate, 3),
                    _p(g.comparison.p_value),
                    "harmed" if g.harmed else "ok",
                )
    if guard.row_count:
        out.print(guard)


@click.command("report")
@click.argument("name", metavar="CAMPAIGN")
@config_option
@click.option("--control", metavar="VARIANT", help="Compare with this arm (default: control).")
@format_option
@click.option(
    "--html",
    "html_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Also write a self-contained HTML report with plots to FILE.",
)
@handles_errors
def report_command(
    name: str,
    config_path: Path,
    control: str | None,
    output_format: str,
    html_path: Path | None,
) -> None:
    """Report a campaign: planned, sent, delivered, bounced, opens, clicks, CTR, unsubscribes,
    complaints, conversions and revenue, by day, segment and variant; for an experiment first
    its rates, lifts with intervals, p-values, SRM check, guardrails and a decision per arm.

    CAMPAIGN is any campaign in the config, or an experiment imported with campaign track; for a
    journey, its funnel: entries per step and branch, exits by reason and conversions.

    Example: campaign report winback --html winback.html
    """
    from campaigns.config import load_config
    from campaigns.engagement.report import campaign_report

    config = load_config(config_path)
    if name in config.journeys and name not in config.campaigns:
        from cli.report import journey_report_command

        if control is not None:
            raise click.UsageError(f"--control applies to experiments; {name} is a journey")
        journey_report_command(config, name, output_format, html_path)
        return
    campaign = config.campaigns.get(name)
    if campaign is not None and campaign.experiment is None:
        if control is not None:
            raise click.UsageError(f"--control applies to experiments; {name} has none")
        report = campaign_report(config, name)
        if html_path is not None:
            from campaigns.engagement.html import render_html as campaign_html

            html_path.write_text(campaign_html(report), encoding="utf-8")
        if output_format == "json":
            print_json(report.to_json())
            return
        out = console()
        from cli.report import print_campaign_report

        print_campaign_report(out, report)
        if html_path is not None:
            out.print(f"Wrote {html_path}", markup=False, soft_wrap=True)
        return

    from campaigns.experiments.commands import experiment_report
    from campaigns.experiments.report import to_json

    experiment = name
    if campaign is not None and campaign.experiment is not None:
        experiment = campaign.experiment.name or name
    analysis = experiment_report(config, experiment, control)
    engagement = campaign_report(config, name) if campaign is not None else None
    if engagement is not None and not engagement.total.planned:
        engagement = None  # an experiment whose messages are not in this outbox
    if html_path is not None:
        from campaigns.engagement.html import render_html as campaign_html
        from campaigns.experiments.html import render_html

        page = render_html(analysis)
        if engagement is not None:
            page = page.replace("</body>", campaign_html(engagement, fragment=True) + "</body>")
        html_path.write_text(page, encoding="utf-8")
    if output_format == "json":
        data = to_json(analysis)
        if engagement is not None:
            data["campaign"] = engagement.to_json()
        print_json(data)
        return
    out = console()
    print_report(out, analysis)
    if engagement is not None:
        from cli.report import print_campaign_report

        out.print()
        print_campaign_report(out, engagement)
    if html_path is not None:
        out.print(f"Wrote {html_path}", markup=False, soft_wrap=True)


_NOUNS = {
    "clicks": ("click", "clicks"),
    "conversions": ("conversion", "conversions"),
    "unsubscribes": ("unsubscribe", "unsubscribes"),
    "bounces": ("bounce", "bounces"),
    "complaints": ("complaint", "complaints"),
    "exposures": ("exposure", "exposures"),
}


def _plural(count: int, kind: str) -> str:
    one, many = _NOUNS[kind]
    return f"{count:,} {one if count == 1 else many}"


def print_import(out: Console, result: ImportResult, file: Path) -> None:
    """What an import stored, skipped and refused (at most 20 refused rows listed)."""
    out.print(
        f"Imported {_plural(result.imported, result.kind)} from {file}.",
        markup=False,
        soft_wrap=True,
    )
    if result.repeats and result.kind == "exposures":
        out.print(
            f"{_plural(result.repeats, 'exposures').replace('exposure', 'repeat exposure', 1)} "
            "not stored: a customer's first exposure counts.",
            markup=False,
            soft_wrap=True,
        )
    elif result.repeats:
        out.print(
            f"{_plural(result.repeats, result.kind)} seen before, counted as repeats, "
            "not stored again.",
            markup=False,
            soft_wrap=True,
        )
    if result.bad:
        out.print(
            f"{len(result.bad):,} {'row' if len(result.bad) == 1 else 'rows'} refused:",
            markup=False,
            soft_wrap=True,
        )
        for bad in result.bad[:_SHOWN_BAD_ROWS]:
            out.print(f"  {bad}", markup=False, soft_wrap=True)
        if len(result.bad) > _SHOWN_BAD_ROWS:
            out.print(
                f"  ... and {len(result.bad) - _SHOWN_BAD_ROWS:,} more",
                markup=False,
                soft_wrap=True,
            )


@click.command("track")
@click.argument("kind", type=click.Choice(TRACKED))
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@config_option
@handles_errors
def track_command(kind: str, file: Path, config_path: Path) -> None:
    """Import clicks, conversions, unsubscribes, bounces, complaints or exposures from a CSV
    or JSON Lines FILE.

    Rows of unknown customers are refused with their line numbers, and so are clicks,
    unsubscribes, bounces and complaints of held-out customers who were sent nothing.
    Unsubscribes (optional topic column; none: all marketing), hard bounces (optional bounce
    column, hard or soft) and complaints suppress their customers at once, as the endpoint does.

    Example: campaign track conversions shop-orders.csv
    """
    from campaigns.config import load_config
    from campaigns.experiments.commands import track

    config = load_config(config_path)
    result = track(config, cast("Kind", kind), file)
    print_import(console(), result, file)


@click.group("experiment", cls=Group)
def experiment_group() -> None:
    """Plan experiments, import ones run elsewhere, and promote their winners.

    Example: campaign experiment plan winback --audience 20000
    """


@experiment_group.command("import")
@click.argument("experiment")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@config_option
@handles_errors
def import_command(experiment: str, file: Path, config_path: Path) -> None:
    """Import the exposures of EXPERIMENT, run elsewhere, from a CSV or JSON Lines FILE.

    FILE has variant, customer_id and timestamp (an experiment column is optional). Its design
    (arms and their planned shares, control, baseline rate, minimum detectable effect, alpha,
    power, horizon, sidedness) goes in [experiments.EXPERIMENT] in config.toml; rows in an arm
    the design does not list are refused. Without a design the report shows the figures but
    judges nothing.

    Example: campaign experiment import spring-mail exposures.csv
    """
    from campaigns.config import load_config
    from campaigns.experiments.commands import import_experiment

    config = load_config(config_path)
    result = import_experiment(config, experiment, file)
    out = console()
    print_import(out, result, file)
    if experiment not in config.experiments:
        out.print(
            f"No design for {experiment!r} in {config_path}: add [experiments.{experiment}] "
            "(arms, baseline_rate, minimum_detectable_effect, ...) before reading its report.",
            markup=False,
            soft_wrap=True,
        )


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
    from rich.table import Table

    from campaigns.config import load_config
    from campaigns.experiments.commands import plan

    config = load_config(config_path)
    result = plan(config, experiment, audience, baseline, effect)
    spec = result.spec
    out = console()
    out.print(
        f"Experiment {spec.name}: detect {100 * result.effect:.2f} points over a "
        f"{100 * result.baseline:.2f}% baseline, alpha {spec.alpha:g} (two-sided), power "
        f"{100 * spec.power:.0f}%",
        markup=False,
        soft_wrap=True,
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
        out.print(
            f"Customers to expose in all (every arm, holdout included): {total:,}",
            markup=False,
            soft_wrap=True,
        )


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
    from campaigns.config import load_config
    from campaigns.experiments.commands import promote_variant

    config = load_config(config_path)
    now = datetime.now(UTC).replace(tzinfo=None)
    previous = promote_variant(config, experiment, None if undo else variant, now)
    out = console()
    if undo:
        was = f" (was {previous})" if previous else " (nothing was promoted)"
        out.print(
            f"Experiment {experiment} runs again: variants are assigned as configured{was}.",
            markup=False,
            soft_wrap=True,
        )
    else:
        out.print(
            f"Promoted {variant}: every customer of experiment {experiment} now gets it. "
            f"Undo with: campaign experiment promote {experiment} --undo",
            markup=False,
            soft_wrap=True,
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
    from campaigns.config import load_config
    from campaigns.experiments.commands import simulate

    config = load_config(config_path)
    count = simulate(config, experiment, seed)
    console().print(
        f"Simulated {count:,} purchases by customers exposed in {experiment} "
        "(the demo shop's response model)."
    )
