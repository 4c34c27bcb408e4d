"""``campaign plan`` and ``campaign preview``: see a run before it sends anything."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from cli.errors import handles_errors
from cli.options import at_option, config_option
from cli.output import console, format_option, print_json, table

if TYPE_CHECKING:
    from campaigns.config.schema import Config
    from campaigns.journeys.forecast import JourneyForecast


def _now(at: datetime | None) -> datetime:
    return at or datetime.now(UTC).replace(tzinfo=None)


@click.command("plan")
@config_option
@at_option
@click.option("--campaign", "only", metavar="NAME", help="Plan only this campaign.")
@format_option
@handles_errors
def plan_command(
    config_path: Path, at: datetime | None, only: str | None, output_format: str
) -> None:
    """Show what a run would do now: audiences per campaign and segment, who is left out and
    why, and what changed since the last run. Writes nothing.

    Example: campaign plan --at 2026-11-23T10:00
    """
    from campaigns.config import load_config
    from campaigns.counts import total
    from campaigns.journeys.report import edit_plan, journey_plan
    from campaigns.preview import plan_workspace

    config = load_config(config_path)
    report = plan_workspace(config, _now(at), only)
    journeys = journey_plan(config, report.at) if only is None else []
    edits = edit_plan(config, report.at) if only is None else []
    if output_format == "json":
        print_json({**report.to_json(), "journeys": journeys, "journey_edits": edits})
        return
    out = console()
    out.print(f"Plan at {report.at:%Y-%m-%d %H:%M} UTC")
    rows = table(
        "campaign",
        "status",
        "window",
        "segment",
        "audience>",
        "left out>",
        "held out>",
        "planned>",
        "deferred>",
    )
    for row in report.rows:
        counts = row.counts
        rows.add_row(
            row.campaign,
            row.status,
            report.windows.get(row.campaign, ""),
            row.segment,
            f"{counts.audience:,}",
            f"{counts.left_out_total:,}",
            f"{counts.held_out:,}",
            f"{counts.planned:,}",
            f"{counts.deferred:,}",
        )
    out.print(rows)
    for campaign in dict.fromkeys(r.campaign for r in report.rows):
        left = total(r.counts for r in report.rows if r.campaign == campaign).left_out
        if left:
            detail = ", ".join(f"{n:,} {reason}" for reason, n in sorted(left.items()))
            out.print(f"- {campaign}: left out {detail}")
    if journeys:
        steps = table("journey", "step", "kind", "waiting>", "due now>")
        for step in journeys:
            steps.add_row(
                step["journey"],
                step["step"],
                step["kind"],
                f"{step['waiting']:,}",
                f"{step['due']:,}",
            )
        out.print(steps)
    if edits:
        out.print("Journey edits the next run applies to the customers inside:")
        for edit in edits:
            refused = " (refused: the run will not start)" if edit["change"] == "stranded" else ""
            out.print(f"- {edit['text']}{refused}", markup=False, soft_wrap=True)
    out.print("Changes since the last run:")
    for change in report.changes:
        out.print(f"- {change}")


@click.command("preview")
@click.argument("name", metavar="CAMPAIGN|JOURNEY")
@config_option
@at_option
@click.option(
    "--customer",
    "customers",
    multiple=True,
    metavar="ID",
    help="Render for this customer (repeatable); a journey needs at least one.",
)
@click.option(
    "--sample", type=click.IntRange(min=1), help="Render for N customers of the audience."
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the sample.")
@click.option(
    "--assume",
    multiple=True,
    metavar="STEP|WHAT",
    help="Journeys: the wait_for step (or every wait for a click, open, conversion or "
    "left_segment) sees what it waits for, and takes 'then' (repeatable).",
)
@format_option
@handles_errors
def preview_command(
    name: str,
    config_path: Path,
    at: datetime | None,
    customers: tuple[str, ...],
    sample: int | None,
    seed: int,
    assume: tuple[str, ...],
    output_format: str,
) -> None:
    """Render CAMPAIGN's exact message for a customer, or for a sample of its audience; or walk
    a customer through JOURNEY step by step, with every message it would send. Writes nothing.

    Example: campaign preview winback --customer C000042
    """
    from campaigns.config import load_config
    from campaigns.preview import preview_messages

    config = load_config(config_path)
    if name in config.journeys:
        _preview_journey(config, name, _now(at), customers, sample, assume, output_format)
        return
    if assume:
        raise click.UsageError("--assume applies to journeys; a campaign has no wait_for")
    previews = preview_messages(config, name, _now(at), list(customers) or None, sample, seed)
    if output_format == "json":
        print_json(
            [
                {
                    "customer_id": p.customer_id,
                    "segment": p.segment,
                    "would_send": p.would_send,
                    "why": p.why,
                    "variant": p.variant,
                    "subject": p.subject,
                    "text": p.text,
                    "html": p.html,
                }
                for p in previews
            ]
        )
        return
    out = console()
    if not previews:
        out.print(f"{name}: nobody to preview: the campaign matches no customer at this time")
    for preview in previews:
        verdict = "would send" if preview.would_send else "would NOT send"
        if preview.variant is not None:
            verdict += f" (variant {preview.variant})"
        out.print(f"─── {preview.customer_id} ({preview.segment}): {verdict}, {preview.why}")
        out.print(f"Subject: {preview.subject}")
        out.print()
        out.print(preview.text, markup=False, highlight=False)
        if preview.html is not None:
            out.print(f"[HTML part: {len(preview.html):,} characters]", markup=False)


def _preview_journey(
    config: Config,
    name: str,
    at: datetime,
    customers: tuple[str, ...],
    sample: int | None,
    assume: tuple[str, ...],
    output_format: str,
) -> None:
    from campaigns.journeys.preview import preview_journey

    if sample is not None or not customers:
        raise click.UsageError(f"{name} is a journey: preview it for a customer with --customer ID")
    previews = preview_journey(config, name, list(customers), at, assume)
    if output_format == "json":
        print_json([p.to_json() for p in previews])
        return
    out = console()
    for preview in previews:
        out.print(
            f"─── {preview.customer_id} ({preview.segment}) in journey {name}, "
            f"from {preview.at:%Y-%m-%d %H:%M} UTC",
            markup=False,
        )
        out.print(("" if preview.enters else "Does not enter: ") + preview.why, markup=False)
        for visit in preview.visits:
            line = f"{visit.at:%Y-%m-%d %H:%M}  {visit.step} ({visit.kind}): {visit.outcome}"
            if visit.since is not None and visit.since != visit.at:
                line += f" (waiting since {visit.since:%Y-%m-%d %H:%M})"
            line += f" -> {visit.to}"
            if visit.other:
                line += "; not taken: " + ", ".join(f"{o} -> {t}" for o, t in visit.other)
            out.print(line, markup=False, highlight=False)
            message = visit.message
            if message is None:
                continue
            if message.error is not None:
                out.print(f"    render failed: {message.error}", markup=False)
                continue
            if message.deferred_until is not None:
                out.print(
                    f"    deferred by quiet hours until {message.deferred_until:%Y-%m-%d %H:%M}"
                )
            out.print(f"    Subject: {message.subject}", markup=False, highlight=False)
            for text_line in message.text.splitlines():
                out.print(f"    {text_line}".rstrip(), markup=False, highlight=False)
            if message.html is not None:
                out.print(f"    [HTML part: {len(message.html):,} characters]", markup=False)
        if preview.end:
            out.print(f"End: {preview.end}", markup=False)
    out.print(
        "Frequency caps and the per-run limit are not applied here: a run holds a send back "
        "until they allow it.",
        markup=False,
    )


@click.command("forecast")
@config_option
@at_option
@click.option("--days", type=click.IntRange(1, 90), default=14, show_default=True)
@format_option
@handles_errors
def forecast_command(config_path: Path, at: datetime | None, days: int, output_format: str) -> None:
    """Simulate the coming days of runs: messages per day, how many messages each customer
    gets, cap collisions, overlapping campaigns and campaigns that never fire. Writes nothing.

    Example: campaign forecast --days 14
    """
    from campaigns.config import load_config
    from campaigns.forecast import forecast

    config = load_config(config_path)
    result = forecast(config, _now(at), days)
    if output_format == "json":
        print_json(result.to_json())
        return
    out = console()
    start = f"{result.start:%Y-%m-%d %H:%M}"
    out.print(f"Forecast: {days} days from {start} UTC ({result.runs} simulated runs)")
    names = list(config.campaigns)
    days_table = table(
        "day",
        *(f"{name}>" for name in names),
        "customers with 1 / 2 / 3+>",
        title="Messages per day",
    )
    for day in sorted(result.per_day):
        counts = result.per_day[day]
        pressure = result.pressure.get(day, Counter())
        three = sum(n for k, n in pressure.items() if k >= 3)
        days_table.add_row(
            day,
            *(f"{counts.get(name, 0):,}" for name in names),
            f"{pressure.get(1, 0):,} / {pressure.get(2, 0):,} / {three:,}",
        )
    out.print(days_table)
    for name, count in sorted(result.cap_collisions.items()):
        if count:
            noun = "message" if count == 1 else "messages"
            out.print(f"- {name}: {count:,} {noun} held back by frequency caps")
    for warning in result.warnings():
        out.print(f"- {warning}")
    for journey in result.journeys:
        _print_journey_forecast(out, journey)


def _print_journey_forecast(out: Any, journey: JourneyForecast) -> None:
    """A journey's forecast: entries and messages per day, then each step (expected counts)."""
    out.print(
        f"Journey {journey.journey}: {journey.inside_now:,} inside now, "
        f"{sum(journey.entered.values()):,} entering in the horizon (expected counts below)"
    )
    sends = list(journey.messages)
    days = table("day", "entered>", *(f"{s} messages>" for s in sends))
    for day in sorted(journey.entered):
        days.add_row(
            day,
            f"{journey.entered[day]:,}",
            *(f"{journey.messages[s].get(day, 0):,.0f}" for s in sends),
        )
    out.print(days)
    steps = table("step", "kind", "inside now>", "reach>", "branches", "still there at the end>")
    for step in journey.steps:
        steps.add_row(
            step.name,
            step.kind,
            f"{step.inside_now:,}",
            f"{step.reached:,.0f}",
            "; ".join(f"{o} -> {t}: {n:,.0f}" for (o, t), n in step.branches.items()),
            f"{step.waiting_at_end:,.0f}",
        )
    out.print(steps)
    for step_name, (rate, source) in journey.rates.items():
        out.print(f"- {journey.journey} {step_name}: 'then' taken by {rate:.1%} ({source})")
