"""``campaign report JOURNEY`` and the journey lines of ``campaign plan``: what the store says a
journey did, step by step and branch by branch."""

from __future__ import annotations

import html
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import Engine

from campaigns.config.journeys import EXIT, JourneyConfig
from campaigns.config.schema import Config
from campaigns.counts import FATES, fate
from campaigns.experiments.stats import (
    Proportion,
    ProportionComparison,
    SampleRatioCheck,
    compare_proportions,
    holm,
    sample_ratio_check,
)
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


@dataclass(frozen=True)
class ArmLine:
    """One arm of a random split: the entries it got, how many bought after, and the comparison
    with the control arm (None for the control)."""

    arm: str
    weight: float
    entries: int
    converted: int
    comparison: ProportionComparison | None = None
    #: The comparison's p-value adjusted over the split's arms (Holm).
    p_adjusted: float | None = None

    @property
    def holdout(self) -> bool:
        return self.arm == EXIT

    @property
    def rate(self) -> float | None:
        return self.converted / self.entries if self.entries else None

    def to_json(self) -> dict[str, Any]:
        c = self.comparison
        return {
            "arm": self.arm,
            "holdout": self.holdout,
            "weight": self.weight,
            "entries": self.entries,
            "converted": self.converted,
            "conversion_rate": self.rate,
            "vs_control": None
            if c is None
            else {
                "status": c.status,
                "abs_lift": c.abs_lift,
                "abs_lift_ci": None
                if c.abs_lift_ci is None
                else [c.abs_lift_ci.low, c.abs_lift_ci.high],
                "rel_lift": c.rel_lift,
                "p_value": c.p_value,
                "p_holm": self.p_adjusted,
                "test": c.test,
            },
        }


@dataclass(frozen=True)
class SplitResult:
    """A random split read as an experiment: conversion (a purchase after the draw) per arm,
    each arm against the control, and whether the arms got the shares their weights give."""

    step: str
    control: str
    arms: list[ArmLine]
    sample_ratio: SampleRatioCheck

    def to_json(self) -> dict[str, Any]:
        srm = self.sample_ratio
        return {
            "step": self.step,
            "control": self.control,
            "arms": [a.to_json() for a in self.arms],
            "sample_ratio": {"status": srm.status, "p_value": srm.p_value},
        }


def split_results(engine: Engine, name: str, journey: JourneyConfig) -> list[SplitResult]:
    """Each random split of ``journey`` with its arms compared to its control (the statistics
    of experiments: a two-proportion z-test, or Fisher's exact test for small counts, score
    intervals, Holm's adjustment over the arms, and a sample-ratio check on the weights)."""
    found = []
    for step in journey.steps:
        if step.random is None:
            continue
        rows = store.split_arms(engine, name, step.name)
        counts = {
            str(r["outcome"]).removeprefix("random: "): (int(r["n"]), int(r["converted"] or 0))
            for r in rows.to_dict("records")
        }
        control = step.control_arm()
        base = Proportion(*counts.get(control, (0, 0)))
        arms = {
            arm: ArmLine(arm, weight, *counts.get(arm, (0, 0)))
            for arm, weight in step.random.items()
        }
        others = [a for a in arms if a != control]
        compared = {
            a: compare_proportions(base, Proportion(arms[a].entries, arms[a].converted))
            for a in others
        }
        p_values = [compared[a].p_value for a in others]
        adjusted = (
            dict(zip(others, holm([p or 1.0 for p in p_values]), strict=True))
            if all(p is not None for p in p_values)
            else {}
        )
        lines = [
            arms[a]
            if a == control
            else replace(arms[a], comparison=compared[a], p_adjusted=adjusted.get(a))
            for a in step.random
        ]
        check = sample_ratio_check(
            [arms[a].entries for a in step.random], list(step.random.values())
        )
        found.append(SplitResult(step.name, control, lines, check))
    return found


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
    #: Each random split read as an experiment.
    splits: list[SplitResult] = field(default_factory=list)

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
            "splits": [s.to_json() for s in self.splits],
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
        splits=split_results(engine, name, journey),
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
        f"<h2>Funnel</h2>{funnel}<h2>Flow</h2>{flow}{_splits_html(report)}"
        "<h2>Steps</h2><table border='1' cellspacing='0' cellpadding='4'><tr><th>step</th>"
        "<th>kind</th><th>reached</th><th>waiting</th><th>due</th><th>outcomes</th></tr>"
        f"{rows}</table></body></html>"
    )


def _splits_html(report: JourneyReport) -> str:
    """A table per random split: arms, conversion, and each arm against the control."""
    parts = []
    for split in report.splits:
        rows = "".join(
            f"<tr><td>{html.escape(arm_label(a))}</td><td>{a.entries:,}</td>"
            f"<td>{a.converted:,}</td><td>{html.escape(percent(a.rate))}</td>"
            f"<td>{html.escape(versus(a))}</td></tr>"
            for a in split.arms
        )
        parts.append(
            f"<h2>Random split {html.escape(split.step)}</h2>"
            "<table border='1' cellspacing='0' cellpadding='4'><tr><th>arm</th><th>entries</th>"
            "<th>converted</th><th>rate</th><th>against the control</th></tr>"
            f"{rows}</table><p>{html.escape(sample_ratio_text(split))}</p>"
        )
    return "".join(parts)


def arm_label(arm: ArmLine) -> str:
    return "exit (holdout)" if arm.holdout else arm.arm


def percent(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.2f}%"


def versus(arm: ArmLine) -> str:
    """An arm against the control in words: lift, its 95% interval, p (Holm-adjusted)."""
    c = arm.comparison
    if c is None:
        return "control"
    if c.abs_lift is None:
        return "no data yet"
    text = f"{100 * c.abs_lift:+.2f} points"
    if c.abs_lift_ci is not None:
        text += f" (95% CI {100 * c.abs_lift_ci.low:+.2f} to {100 * c.abs_lift_ci.high:+.2f})"
    if c.p_value is not None:
        text += f", p = {c.p_value:.3f}"
    if arm.p_adjusted is not None:
        text += f" (Holm {arm.p_adjusted:.3f})"
    return text


def sample_ratio_text(split: SplitResult) -> str:
    srm = split.sample_ratio
    if srm.p_value is None:
        return "Sample ratio: not enough entries to check."
    verdict = (
        "the arms got the shares their weights give"
        if srm.p_value >= 0.001
        else ("MISMATCH: the arms did not get the shares their weights give")
    )
    return f"Sample ratio: {verdict} (chi-square p = {srm.p_value:.3f})."
