"""Printing ``campaign report`` for a campaign: totals, then by day, segment and variant."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from cli.output import console, print_json, table

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from campaigns.config.schema import Config
    from campaigns.engagement.report import CampaignReport, Metrics

#: The columns of the tables by day, segment and variant.
_COLUMNS = ("sent", "delivered", "opened", "clicked", "CTR", "unsub.", "compl.", "conv.", "revenue")


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.2f}%"


def _cells(m: Metrics) -> list[str]:
    return [
        f"{m.sent:,}",
        f"{m.delivered:,}",
        f"{m.opened:,}",
        f"{m.clicked:,}",
        _pct(m.ctr),
        f"{m.unsubscribed:,}",
        f"{m.complained:,}",
        f"{m.converted:,}",
        f"{m.revenue:,.2f}",
    ]


def _table(first: str, rows: list[tuple[str, Metrics]]) -> Table:
    from rich.table import Table

    table = Table()
    table.add_column(first)
    for name in _COLUMNS:
        table.add_column(name, justify="right")
    for name, metrics in rows:
        table.add_row(name, *_cells(metrics))
    return table


def print_campaign_report(out: Console, report: CampaignReport) -> None:
    """The totals in words, tables by day, segment and variant, then the notes."""
    m = report.total
    lines = [
        f"Campaign {report.campaign}: topic {report.topic}, links "
        f"{'tracked' if report.tracked else 'not tracked'}, conversions within {report.window}.",
        f"Messages: {m.planned:,} planned, {m.queued:,} queued, {m.sent:,} sent, "
        f"{m.failed:,} failed, {m.suppressed:,} suppressed at send time.",
        f"Delivered: {m.delivered:,} ({report.confirmed_deliveries:,} confirmed by provider "
        f"events, the rest sent and not bounced); bounced: {m.bounced:,}.",
        f"Opened: {m.opened:,} by a person, {m.machine_opened:,} only by a machine.",
        f"Clicked: {m.clicked:,}; CTR (clicked / delivered) {_pct(m.ctr)}; click-to-open "
        f"(clicked / opened) {_pct(m.click_to_open)}.",
        f"Unsubscribed: {m.unsubscribed:,}; complained: {m.complained:,}.",
        f"Converted: {m.converted:,}, revenue {m.revenue:,.2f}.",
    ]
    for line in lines:
        out.print(line, markup=False, soft_wrap=True)
    out.print(_table("day", report.by_day))
    out.print(_table("segment", report.by_segment))
    if report.by_variant:
        out.print(_table("variant", report.by_variant))
    for note in report.notes:
        out.print(f"- {note}", markup=False, soft_wrap=True)


def journey_report_command(
    config: Config, name: str, output_format: str, html_path: Path | None
) -> None:
    """``campaign report JOURNEY``: the funnel in the terminal, as JSON, or as an HTML page."""
    from datetime import UTC, datetime

    from campaigns.journeys.report import (
        arm_label,
        journey_report,
        percent,
        render_html,
        sample_ratio_text,
        versus,
    )

    report = journey_report(config, name, datetime.now(UTC).replace(tzinfo=None))
    if html_path is not None:
        html_path.write_text(render_html(report, config.journeys[name]), encoding="utf-8")
    if output_format == "json":
        print_json(report.to_json())
        return
    out = console()
    exits = ", ".join(f"{n:,} {r}" for r, n in sorted(report.exited.items())) or "none"
    out.print(
        f"Journey {name}: {report.entries:,} entries, {report.active:,} active, "
        f"{report.completed:,} completed, exited: {exits}",
        markup=False,
    )
    rate = f" ({report.converted / report.entries:.1%})" if report.entries else ""
    median = (
        f", median {report.median_days_to_convert:g} days after entry"
        if report.median_days_to_convert is not None
        else ""
    )
    out.print(f"Converted (bought after entering): {report.converted:,}{rate}{median}")
    steps = table("step", "kind", "reached>", "waiting>", "due>", "messages", "outcomes")
    for line in report.steps:
        steps.add_row(
            line.name,
            line.kind,
            f"{line.reached:,}",
            f"{line.waiting:,}",
            f"{line.due:,}",
            ", ".join(f"{n:,} {k.replace('_', ' ')}" for k, n in line.messages.items()),
            "; ".join(
                f"{o} -> {t}: {n:,}" for o, ts in line.outcomes.items() for t, n in ts.items()
            ),
        )
    out.print(steps)
    for split in report.splits:
        arms = table(
            "arm",
            "entries>",
            "converted>",
            "rate>",
            "against the control",
            title=f"Random split {split.step}: conversion (a purchase after the draw) by arm",
        )
        for arm in split.arms:
            arms.add_row(
                arm_label(arm),
                f"{arm.entries:,}",
                f"{arm.converted:,}",
                percent(arm.rate),
                versus(arm),
            )
        out.print(arms)
        out.print(sample_ratio_text(split), markup=False, soft_wrap=True)
    if html_path is not None:
        out.print(f"Wrote {html_path}", markup=False, soft_wrap=True)
