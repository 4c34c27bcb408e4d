"""``campaign recommend evaluate`` and ``campaign model train | report``."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click

from cli.errors import handles_errors
from cli.options import Group, at_option, config_option
from cli.output import console, format_option, print_json, table

#: The kinds of personalization model (``campaigns.personalization.models_store.KINDS``).
KINDS = ("propensity", "uplift", "clv")


@click.group("recommend", cls=Group)
def recommend_group() -> None:
    """Product recommendations: evaluate the methods offline.

    Example: campaign recommend evaluate --k 10 --test-days 30
    """


@recommend_group.command("evaluate")
@config_option
@click.option(
    "--k",
    "k",
    type=click.IntRange(1, 100),
    default=10,
    show_default=True,
    help="Products recommended per customer.",
)
@click.option(
    "--test-days",
    type=click.IntRange(1, 3650),
    default=30,
    show_default=True,
    help="The length of each test window.",
)
@click.option(
    "--splits",
    type=click.IntRange(1, 24),
    default=3,
    show_default=True,
    help="Rolling cutoffs: the last --test-days, the --test-days before them, and so on.",
)
@click.option(
    "--purpose",
    "purposes",
    type=click.Choice(["replenish", "discover"]),
    multiple=True,
    help="Evaluate only this task (repeatable; default both).",
)
@click.option(
    "--resamples",
    type=click.IntRange(0, 100_000),
    default=1000,
    show_default=True,
    help="Bootstrap resamples of the customers for the 95% intervals.",
)
@click.option(
    "--html",
    "html_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Also write a self-contained HTML report (a plot per metric) to this file.",
)
@format_option
@handles_errors
def evaluate_command(
    config_path: Path,
    k: int,
    test_days: int,
    splits: int,
    purposes: tuple[str, ...],
    resamples: int,
    html_path: Path | None,
    output_format: str,
) -> None:
    """Evaluate the recommenders of each task on rolling time splits of the transactions.

    replenish (repeats allowed): the repeat-aware model against personal rebuy and popularity
    with repeats; discover (new-to-customer products only): EASE and item-to-item CF against
    popularity of new products and random. For each: precision, recall, NDCG and MAP at k,
    catalogue coverage, 95% bootstrap intervals over customers and the paired difference from
    the baseline; weights are tuned on the days before each cutoff.

    Example: campaign recommend evaluate --k 10 --test-days 30 --html evaluation.html
    """
    from campaigns.config import load_config
    from campaigns.personalization.commands import evaluate
    from campaigns.personalization.evaluate import PURPOSES
    from campaigns.personalization.evaluate_report import (
        TASK_LABELS,
        headline,
        render_html,
        rolling_rows,
        split_rows,
    )

    config = load_config(config_path)
    result = evaluate(config, k, test_days, splits, purposes or PURPOSES, resamples)
    if html_path is not None:
        html_path.write_text(render_html(result), encoding="utf-8")
    if output_format == "json":
        print_json(result.to_json())
        return
    out = console()
    cutoffs = ", ".join(f"{c:%Y-%m-%d %H:%M}" for c in result.cutoffs)
    out.print(
        f"Time splits at {cutoffs}: trained before each cutoff, tested on the {test_days} days "
        f"after it; 95% intervals from {resamples:,} bootstrap resamples of the customers.",
        soft_wrap=True,
    )
    for task in result.tasks:
        split = task.latest
        out.print(
            f"{TASK_LABELS[task.purpose]}: latest cutoff {split.cutoff:%Y-%m-%d}, "
            f"{split.customers:,} customers evaluated; chosen by validation: "
            f"{split.tuning.method}.",
            soft_wrap=True,
        )
        scores = table("method", f"precision@{k}>", f"recall@{k}>", f"NDCG@{k}>", f"MAP@{k}>",
                       "coverage>", f"NDCG@{k} vs baseline>")  # fmt: skip
        for cells in split_rows(task):
            scores.add_row(*cells)
        out.print(scores)
        if len(task.splits) > 1:
            rolling = table(
                "method",
                *[f"NDCG@{k} {s.cutoff:%Y-%m-%d}>" for s in task.splits],
                "mean>",
            )
            for cells in rolling_rows(task):
                rolling.add_row(*cells)
            out.print(rolling)
    for task in result.tasks:
        out.print(headline(task, k), soft_wrap=True)
    if result.note:
        out.print(f"Note: {result.note}", soft_wrap=True)
    if html_path is not None:
        out.print(f"Wrote {html_path}")


@click.group("model", cls=Group)
def model_group() -> None:
    """Train and report the propensity and uplift models that runs use.

    Example: campaign model train propensity && campaign model report propensity
    """


@model_group.command("train")
@click.argument("kind", type=click.Choice(list(KINDS)))
@config_option
@at_option
@click.option(
    "--target", help="propensity: the 0/1 response column (a customer trait or in --table)."
)
@click.option(
    "--table",
    "table",
    type=click.Path(path_type=Path, dir_okay=False),
    help="propensity: a CSV file with one row per customer and the --target column.",
)
@click.option("--separator", help="The --table's column separator (default ','; 'tab' for TSV).")
@click.option("--experiment", help="uplift: learn from this experiment's exposures and holdout.")
@click.option(
    "--simulate",
    metavar="VARIANT",
    help="uplift: simulate an experiment sending VARIANT on the demo shop.",
)
@click.option(
    "--control",
    metavar="VARIANT",
    help="uplift with --simulate: the untreated arm gets VARIANT instead of nothing.",
)
@click.option(
    "--window-days",
    type=click.FloatRange(min=0, min_open=True),
    default=14.0,
    show_default=True,
    help="A conversion counts this many days after exposure.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
@click.option(
    "--accept",
    is_flag=True,
    help="Let runs target with the model even if it does not beat chance.",
)
@click.option(
    "--holdout-days",
    type=click.IntRange(min=0),
    default=90,
    show_default=True,
    help="clv: the last days before --at held out to check the predictions (0: no check).",
)
@click.option(
    "--unit",
    type=click.Choice(["weeks", "days"]),
    default="weeks",
    show_default=True,
    help="clv: the BG/NBD model's time unit (it scales alpha only).",
)
@click.option(
    "--purchase-model",
    type=click.Choice(["bgnbd", "bgbb"]),
    default="bgnbd",
    show_default=True,
    help="clv: BG/NBD (continuous time) or BG/BB (purchases counted per --period-days).",
)
@click.option(
    "--period-days",
    type=click.FloatRange(min=1),
    default=365.0,
    show_default=True,
    help="clv with bgbb: the length of one period.",
)
@click.option(
    "--discount-rate",
    type=click.FloatRange(min=0),
    default=0.1,
    show_default=True,
    help="clv: the annual rate clv_12m discounts future months at.",
)
@handles_errors
def train_command(
    kind: str,
    config_path: Path,
    at: datetime | None,
    target: str | None,
    table: Path | None,
    separator: str | None,
    experiment: str | None,
    simulate: str | None,
    control: str | None,
    window_days: float,
    seed: int,
    accept: bool,
    holdout_days: int,
    unit: str,
    purchase_model: str,
    period_days: float,
    discount_rate: float,
) -> None:
    """Train a new version of the propensity, uplift or lifetime-value model; the next run
    scores with it. A propensity or uplift model is used only if it beats chance (CV AUC
    interval above 0.5; Qini interval above 0), or with --accept.

    clv fits BG/NBD and Gamma-Gamma on the purchases up to --at (default: the day after the
    last one), checks them on the last --holdout-days, and adds p_alive,
    expected_purchases_90d, expected_spend and clv_12m to the customers.

    Example: campaign model train propensity --table marketing_campaign.csv --separator tab
    --target Response; campaign model train uplift --simulate discount;
    campaign model train clv --holdout-days 273
    """
    from campaigns.config import load_config
    from campaigns.personalization.clv.commands import train_clv_model
    from campaigns.personalization.commands import (
        Trained,
        model_report,
        train_propensity_model,
        train_uplift_model,
    )
    from campaigns.personalization.report import report_lines

    config = load_config(config_path)
    if kind == "clv":
        version, _ = train_clv_model(
            config,
            at,
            holdout_days,
            unit,
            "bgbb" if purchase_model == "bgbb" else "bgnbd",
            period_days,
            discount_rate,
        )
        trained = Trained("clv", version, {})
    elif kind == "propensity":
        trained = train_propensity_model(
            config, at, target, table, separator, window_days, seed, accept
        )
    else:
        trained = train_uplift_model(
            config, at, experiment, simulate, window_days, seed, control, accept
        )
    out = console()
    out.print(f"Stored {trained.kind} model v{trained.version}.")
    stored = model_report(config, kind)
    for line in report_lines(stored):
        out.print(line, soft_wrap=True)


@model_group.command("report")
@click.argument("kind", metavar="NAME", type=click.Choice(list(KINDS)))
@config_option
@click.option(
    "--html",
    "html_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Also write a self-contained HTML report (plots embedded) to this file.",
)
@format_option
@handles_errors
def report_command(
    kind: str, config_path: Path, html_path: Path | None, output_format: str
) -> None:
    """Report the newest propensity, uplift or lifetime-value model: its fit and its checks.

    Example: campaign model report uplift --html uplift.html; campaign model report clv
    --format json
    """
    from campaigns.config import load_config
    from campaigns.personalization.commands import model_report
    from campaigns.personalization.report import render_html, report_lines

    config = load_config(config_path)
    stored = model_report(config, kind)
    if html_path is not None:
        html_path.write_text(render_html(stored), encoding="utf-8")
    if output_format == "json":
        print_json(
            {
                "kind": stored.kind,
                "version": stored.version,
                "created_at": stored.created_at,
                "settings": stored.settings,
                "report": stored.report,
            }
        )
        return
    out = console()
    for line in report_lines(stored):
        out.print(line, soft_wrap=True)
    if html_path is not None:
        out.print(f"Wrote {html_path}")
