"""``campaign report CAMPAIGN --html``: a campaign's report as one self-contained page (plots
embedded as PNG, no network)."""

from __future__ import annotations

import base64
import io
from html import escape
from typing import TYPE_CHECKING

from campaigns.engagement.report import CampaignReport, Metrics

if TYPE_CHECKING:
    from matplotlib.figure import Figure

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; max-width: 80em; }
table { border-collapse: collapse; font-size: 0.85em; margin-bottom: 1em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.5em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.note { color: #555; }
.missing { color: #666; font-style: italic; }
"""

COLUMNS = (
    "planned",
    "queued",
    "sent",
    "delivered",
    "bounced",
    "opened",
    "machine opens",
    "clicked",
    "CTR",
    "click-to-open",
    "unsubscribed",
    "complained",
    "converted",
    "revenue",
)


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.2f}%"


def row(metrics: Metrics) -> list[str]:
    """The cells of one line of :data:`COLUMNS`."""
    m = metrics
    return [
        f"{m.planned:,}",
        f"{m.queued:,}",
        f"{m.sent:,}",
        f"{m.delivered:,}",
        f"{m.bounced:,}",
        f"{m.opened:,}",
        f"{m.machine_opened:,}",
        f"{m.clicked:,}",
        _pct(m.ctr),
        _pct(m.click_to_open),
        f"{m.unsubscribed:,}",
        f"{m.complained:,}",
        f"{m.converted:,}",
        f"{m.revenue:,.2f}",
    ]


def _table(first: str, rows: list[tuple[str, Metrics]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in (first, *COLUMNS))
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(c)}</td>" for c in (name, *row(m))) + "</tr>"
        for name, m in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _png(figure: Figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=96, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _by_day_plot(report: CampaignReport) -> tuple[str, str | None, str]:
    from matplotlib.figure import Figure  # only HTML reports need matplotlib

    question = "What happened each day?"
    if not report.by_day:
        return question, None, "Not drawn: no messages yet."
    days = [d for d, _ in report.by_day]
    figure = Figure(figsize=(7, 3.2))
    axes = figure.subplots()
    series = (
        ("delivered", [m.delivered for _, m in report.by_day]),
        ("clicked", [m.clicked for _, m in report.by_day]),
        ("converted", [m.converted for _, m in report.by_day]),
        ("unsubscribed", [m.unsubscribed for _, m in report.by_day]),
    )
    width = 0.8 / len(series)
    for i, (label, values) in enumerate(series):
        axes.bar([x + i * width for x in range(len(days))], values, width, label=label)
    axes.set_xticks([x + 0.4 - width / 2 for x in range(len(days))], days, rotation=30)
    axes.set_ylabel("messages")
    axes.legend(frameon=False, fontsize="small")
    return question, _png(figure), ""


def _by_segment_plot(report: CampaignReport) -> tuple[str, str | None, str]:
    from matplotlib.figure import Figure

    question = "Which segments click and buy?"
    shown = [(name, m) for name, m in report.by_segment if m.delivered]
    if not shown:
        return question, None, "Not drawn: nothing delivered yet."
    figure = Figure(figsize=(7, 0.8 + 0.5 * len(shown)))
    axes = figure.subplots()
    positions = range(len(shown))
    axes.barh(
        [p + 0.2 for p in positions], [100 * (m.ctr or 0) for _, m in shown], 0.4, label="CTR"
    )
    axes.barh(
        [p - 0.2 for p in positions],
        [100 * m.converted / m.delivered for _, m in shown],
        0.4,
        label="converted / delivered",
    )
    axes.set_yticks(list(positions), [name for name, _ in shown])
    axes.set_xlabel("% of delivered messages")
    axes.legend(frameon=False, fontsize="small")
    return question, _png(figure), ""


def render_html(report: CampaignReport, fragment: bool = False) -> str:
    """The report as a whole HTML document, or as a section for another page."""
    parts = [
        f"<p>Topic <strong>{escape(report.topic)}</strong>; links "
        f"{'tracked' if report.tracked else 'not tracked'}; conversions are orders within "
        f"{escape(report.window)} of a message. {report.confirmed_deliveries:,} deliveries "
        "confirmed by provider events; the rest are sent and not bounced.</p>",
        _table("campaign", [(report.campaign, report.total)]),
        "<h2>By day</h2>",
        _table("day", report.by_day),
        "<h2>By segment</h2>",
        _table("segment", report.by_segment),
    ]
    if report.by_variant:
        parts += ["<h2>By variant</h2>", _table("variant", report.by_variant)]
    parts += [f'<p class="note">{escape(n)}</p>' for n in report.notes]
    for question, png, why in (_by_day_plot(report), _by_segment_plot(report)):
        parts.append(f"<h2>{escape(question)}</h2>")
        if png is not None:
            parts.append(f'<img alt="{escape(question)}" src="data:image/png;base64,{png}">')
        else:
            parts.append(f'<p class="missing">{escape(why)}</p>')
    body = "\n".join(parts)
    title = f"Campaign {escape(report.campaign)}"
    if fragment:
        return f'<section id="campaign"><h1>{title}</h1>\n{body}\n</section>\n'
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">\n<title>{title}</title>'
        f"<style>{_STYLE}</style></head>\n<body>\n<h1>{title}</h1>\n{body}\n</body></html>\n"
    )
