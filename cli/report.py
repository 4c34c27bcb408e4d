"""Printing ``campaign report`` for a campaign: totals, then by day, segment and variant."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

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
