"""``campaign report JOURNEY`` and the journey lines of ``campaign plan``: what the store says a
journey did, step by step and branch by branch."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import Engine

from campaigns.config.journeys import EXIT, JourneyConfig
from campaigns.config.schema import Config
from campaigns.counts import FATES, fate
from store import journeys as store
from store.engine import opened_store


@dataclass
class StepLine:
    """One step: how many reached it, how many are there now (and due), how it ended for those
    who took it (outcome -> target -> count), and its messages by fate."""

    name: str
    kind: str
    reached: int = 0
    waiting: int = 0
    due: int = 0
    outcomes: dict[str, dict[str, int]] = field(default_factory=dict)
    messages: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "step": self.name,
            "kind": self.kind,
            "reached": self.reached,
            "waiting": self.waiting,
            "due": self.due,
            "outcomes": [
                {"outcome": o, "to": t, "entries": n}
                for o, targets in self.outcomes.items()
                for t, n in targets.items()
            ],
            "messages": dict(self.messages),
        }


@dataclass
class JourneyReport:
    """A journey's funnel: entries, each step, exits by reason, conversions."""

    journey: str
    at: datetime
    entries: int
    active: int
    completed: int
    exited: dict[str, int]
    steps: list[StepLine]
    #: Entries whose customer bought after entering (at any time since).
    converted: int
    #: Median days from entry to the first purchase, for the converted.
    median_days_to_convert: float | None

    def to_json(self) -> dict[str, Any]:
        return {
            "journey": self.journey,
            "at": self.at.isoformat(timespec="seconds"),
            "entries": self.entries,
            "active": self.active,
            "completed": self.completed,
            "exited": dict(self.exited),
            "converted": self.converted,
            "conversion_rate": self.converted / self.entries if self.entries else None,
            "median_days_to_convert": self.median_days_to_convert,
            "steps": [s.to_json() for s in self.steps],
        }


def journey_report(config: Config, name: str, at: datetime) -> JourneyReport:
    """The report of journey ``name`` from the store."""
    journey = config.require_journey(name)
    with opened_store(config.store.url, config.root) as engine:
        return build_report(engine, name, journey, at)


def build_report(engine: Engine, name: str, journey: JourneyConfig, at: datetime) -> JourneyReport:
    outcomes = store.entry_outcomes(engine, name)
    moves = store.move_counts(engine, name)
    now = store.journey_counts(engine, name, at)
    sent = store.step_messages(engine, name)
    bought = store.conversions(engine, name)
    entries = int(outcomes["n"].sum()) if not outcomes.empty else 0
    by_status = outcomes.groupby("status")["n"].sum() if not outcomes.empty else pd.Series()
    exited = {
        str(r): int(n)
        for r, n in outcomes[outcomes["status"] == "exited"]
        .groupby("exit_reason")["n"]
        .sum()
        .items()
    }
    lines = {s.name: StepLine(s.name, s.kind) for s in journey.steps}
    if journey.steps:
        lines[journey.steps[0].name].reached = entries
    for row in moves.to_dict("records"):
        step, outcome, target, n = row["step"], row["outcome"], row["to_step"], int(row["n"])
        if step in lines:
            lines[step].outcomes.setdefault(str(outcome), {})[str(target)] = n
        if target in lines:
            lines[target].reached += n
    for row in now.to_dict("records"):
        if row["step"] in lines:
            lines[row["step"]].waiting = int(row["active"])
            lines[row["step"]].due = int(row["due"] or 0)
    for row in sent.to_dict("records"):
        step = str(row["window"]).split(":", 1)[-1]
        if step in lines:
            kind = fate(str(row["status"]), False)
            lines[step].messages[kind] = lines[step].messages.get(kind, 0) + int(row["n"])
    for line in lines.values():
        line.messages = {k: line.messages[k] for k in (*FATES, "held_out") if k in line.messages}
    converted = bought[bought["converted_at"].notna()] if not bought.empty else bought
    days = (
        (converted["converted_at"] - converted["entered_at"]).dt.total_seconds() / 86_400
        if not converted.empty
        else pd.Series(dtype=float)
    )
    return JourneyReport(
        journey=name,
        at=at,
        entries=entries,
        active=int(by_status.get("active", 0)),
        completed=int(by_status.get("completed", 0)),
        exited=exited,
        steps=list(lines.values()),
        converted=len(converted),
        median_days_to_convert=round(float(days.median()), 1) if len(days) else None,
    )


def journey_plan(config: Config, at: datetime) -> list[dict[str, Any]]:
    """For ``campaign plan``: per journey and step, the entries waiting there and how many are
    due at ``at``."""
    rows: list[dict[str, Any]] = []
    if not config.journeys:
        return rows
    with opened_store(config.store.url, config.root) as engine:
        for name, journey in config.journeys.items():
            now = store.journey_counts(engine, name, at).set_index("step")
            for step in journey.steps:
                waiting = int(now["active"].get(step.name, 0)) if not now.empty else 0
                due = int(now["due"].get(step.name, 0) or 0) if not now.empty else 0
                rows.append(
                    {
                        "journey": name,
                        "step": step.name,
                        "kind": step.kind,
                        "waiting": waiting,
                        "due": due,
                        "enabled": journey.enabled,
                    }
                )
    return rows


def edit_plan(config: Config, at: datetime) -> list[dict[str, Any]]:
    """For ``campaign plan``: what each journey's edit since the last run does to the entries
    inside (``change``: renamed, removed or stranded), like a migration, before a run applies
    it."""
    from campaigns.journeys.edits import journey_edits

    rows: list[dict[str, Any]] = []
    if not config.journeys:
        return rows
    with opened_store(config.store.url, config.root) as engine:
        for edit in journey_edits(engine, config, at):
            rows += [
                {
                    "journey": c.journey,
                    "step": c.step,
                    "change": c.kind,
                    "to": c.to,
                    "customers": c.customers,
                    "text": c.sentence(),
                }
                for c in edit.changes
            ]
            rows += [
                {
                    "journey": s.journey,
                    "step": s.step,
                    "change": "stranded",
                    "to": None,
                    "customers": s.customers,
                    "text": s.sentence(),
                }
                for s in edit.stranded
            ]
    return rows


def render_html(report: JourneyReport, journey: JourneyConfig) -> str:
    """A page with the funnel (a bar per step) and the flow (an SVG of steps and branches, each
    branch as wide as the entries that took it)."""
    width, row_height = 760, 70
    top = max((s.reached for s in report.steps), default=0) or 1
    bars = []
    for i, line in enumerate(report.steps):
        w = int(500 * line.reached / top)
        y = 10 + i * 34
        bars.append(
            f'<rect x="200" y="{y}" width="{w}" height="24" fill="#4a7fb5"/>'
            f'<text x="190" y="{y + 17}" text-anchor="end">{html.escape(line.name)}</text>'
            f'<text x="{205 + w}" y="{y + 17}">{line.reached:,}</text>'
        )
    funnel = (
        f'<svg width="{width}" height="{20 + 34 * len(report.steps)}" '
        f'font-family="sans-serif" font-size="13">{"".join(bars)}</svg>'
    )
    index = {s.name: i for i, s in enumerate(report.steps)}
    ends = {"completed": len(report.steps), "exit": len(report.steps)}
    flows = []
    for line in report.steps:
        y1 = 20 + index[line.name] * row_height
        for outcome, targets in line.outcomes.items():
            for target, n in targets.items():
                row = index.get(target, ends.get(target, len(report.steps)))
                y2 = 20 + row * row_height
                stroke = max(1.0, 30 * n / top)
                x = 330 if target in index else 560
                label = f"{outcome} → {target}: {n:,}"
                flows.append(
                    f'<path d="M 160 {y1 + 12} C 260 {y1 + 12}, 260 {y2 + 12}, {x} {y2 + 12}" '
                    f'stroke="#9bbbd9" stroke-width="{stroke:.1f}" fill="none" opacity="0.8">'
                    f"<title>{html.escape(label)}</title></path>"
                )
    boxes = [
        f'<rect x="20" y="{20 + i * row_height}" width="140" height="24" fill="#dde8f3"/>'
        f'<text x="26" y="{37 + i * row_height}">{html.escape(s.name)} ({s.kind})</text>'
        for i, s in enumerate(report.steps)
    ]
    end_y = 20 + len(report.steps) * row_height
    boxes.append(
        f'<rect x="560" y="{end_y}" width="170" height="24" fill="#eee"/>'
        f'<text x="566" y="{end_y + 17}">{EXIT} / completed</text>'
    )
    flow = (
        f'<svg width="{width}" height="{60 + (len(report.steps) + 1) * row_height}" '
        f'font-family="sans-serif" font-size="13">{"".join(flows)}{"".join(boxes)}</svg>'
    )
    rows = "".join(
        f"<tr><td>{html.escape(s.name)}</td><td>{s.kind}</td><td>{s.reached:,}</td>"
        f"<td>{s.waiting:,}</td><td>{s.due:,}</td><td>"
        + html.escape(
            "; ".join(f"{o} → {t} {n:,}" for o, ts in s.outcomes.items() for t, n in ts.items())
        )
        + "</td></tr>"
        for s in report.steps
    )
    exits = ", ".join(f"{n:,} {html.escape(r)}" for r, n in sorted(report.exited.items()))
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>Journey {html.escape(report.journey)}</title></head><body>"
        f"<h1>Journey {html.escape(report.journey)}</h1>"
        f"<p>{html.escape(journey.description)}</p>"
        f"<p>{report.entries:,} entries: {report.active:,} active, {report.completed:,} "
        f"completed, exited: {exits or 'none'}; {report.converted:,} converted.</p>"
        f"<h2>Funnel</h2>{funnel}<h2>Flow</h2>{flow}"
        "<h2>Steps</h2><table border='1' cellspacing='0' cellpadding='4'><tr><th>step</th>"
        "<th>kind</th><th>reached</th><th>waiting</th><th>due</th><th>outcomes</th></tr>"
        f"{rows}</table></body></html>"
    )
