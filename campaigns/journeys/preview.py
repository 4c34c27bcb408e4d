"""``campaign preview JOURNEY --customer ID``: one customer walked through a journey as the runs
from now on would take them, with every message rendered. Nothing is written.

The walk starts where the customer is: at their current step if they are inside the journey, at
the first step if a run now would enrol them; otherwise it says why they do not enter. Each step
is taken when it would be due, with ``exit_when`` checked first (on what is known now: purchases
until now, suppressions, segments, and conditions at the step's time). A ``wait_for`` takes its
``else`` branch at the timeout unless its awaited thing has already happened or is assumed
(``assume``: a step name or what it waits for, such as ``click``); the branch not taken is shown
beside it. Frequency caps and the per-run limit are not applied (a run holds such a send back
until they allow it).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from campaigns.compose import RunRenderBudget
from campaigns.conditions import Condition
from campaigns.config.journeys import EXIT, JourneyConfig, StepConfig
from campaigns.config.rules import parse_duration
from campaigns.config.schema import Config
from campaigns.engagement.links import Tracker
from campaigns.errors import CampaignError
from campaigns.inputs import gather_inputs
from campaigns.journeys.engine import HAPPENED, arrival_due, random_branch, segment_branch
from campaigns.journeys.runner import (
    World,
    _compose,
    build_world,
    entry_audience,
    last_purchases,
)
from campaigns.planner import DUE, deferred_until
from campaigns.run import prepare
from store import journeys as store
from store.engine import opened_store


@dataclass(frozen=True)
class Message:
    """A send step's message as the run would render it."""

    subject: str
    text: str
    html: str | None
    #: queued, or render_failed (``error`` says why).
    status: str
    #: When quiet hours defer its delivery to (None: delivered at once).
    deferred_until: datetime | None = None
    error: str | None = None


@dataclass(frozen=True)
class Visit:
    """One step taken: when, how it ended and where the customer goes next."""

    step: str
    kind: str
    #: When the step is taken (when it is due; a wait's end, a wait_for's timeout).
    at: datetime
    outcome: str
    #: The next step, or "completed" / "exit".
    to: str
    #: Since when the customer waited at the step (waits and wait_for only).
    since: datetime | None = None
    #: The branches of this step the walk did not take: (outcome, target).
    other: list[tuple[str, str]] = field(default_factory=list)
    message: Message | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "kind": self.kind,
            "at": self.at.isoformat(timespec="seconds"),
            "waited_since": self.since.isoformat(timespec="seconds") if self.since else None,
            "outcome": self.outcome,
            "to": self.to,
            "not_taken": [{"outcome": o, "to": t} for o, t in self.other],
            "message": None
            if self.message is None
            else {
                "subject": self.message.subject,
                "text": self.message.text,
                "html": self.message.html,
                "status": self.message.status,
                "deferred_until": self.message.deferred_until.isoformat(timespec="seconds")
                if self.message.deferred_until
                else None,
                "error": self.message.error,
            },
        }


@dataclass
class JourneyPreview:
    """One customer's walk through a journey from ``at``."""

    journey: str
    customer_id: str
    segment: str
    at: datetime
    #: Whether the walk happens: they enter now, or are inside already.
    enters: bool
    #: Why they enter, are inside, or do not enter.
    why: str
    entry_no: int | None = None
    visits: list[Visit] = field(default_factory=list)
    #: How the walk ends: "completed", "exited: REASON", or "" when it does not start.
    end: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "journey": self.journey,
            "customer_id": self.customer_id,
            "segment": self.segment,
            "at": self.at.isoformat(timespec="seconds"),
            "enters": self.enters,
            "why": self.why,
            "entry_no": self.entry_no,
            "steps": [v.to_json() for v in self.visits],
            "end": self.end,
        }


def preview_journey(
    config: Config,
    name: str,
    customer_ids: list[str],
    at: datetime,
    assume: Collection[str] = (),
) -> list[JourneyPreview]:
    """Walk each customer through journey ``name`` from ``at`` (see the module docstring)."""
    journey = config.require_journey(name)
    for item in assume:
        if item not in HAPPENED and not any(
            s.name == item and s.wait_for is not None for s in journey.steps
        ):
            waits = [s.name for s in journey.steps if s.wait_for is not None]
            raise CampaignError(
                f"--assume {item!r}: neither a wait_for step of journey {name!r} "
                f"({', '.join(waits) or 'it has none'}) nor one of {', '.join(HAPPENED)}"
            )
    with opened_store(config.store.url, config.root) as engine:
        ready = prepare(engine, config, at, persist=False)
        customers = ready.customers
        missing = [c for c in customer_ids if c not in customers.index]
        if missing:
            raise CampaignError(f"no customer {missing[0]!r} in the store")
        inputs = gather_inputs(engine, config, customers, ready.shop, at)
        names = ready.model.names
        history = store.entry_history(engine, name, customer_ids)
        plan = entry_audience(name, journey, inputs, names) if journey.enabled else None
        chosen = customers.loc[customer_ids]
        last = ready.last_purchase
        if last is None:  # the features came from the lines: read them
            bought = ready.shop.transactions
            last = last_purchases(bought[bought["customer_id"].astype(str).isin(customer_ids)], at)
        world = build_world(
            engine,
            name,
            journey,
            chosen,
            last,
            inputs,
            names,
            at,
        )
        inside = {c: store.active_entry(engine, name, c) for c in customer_ids}
    walker = _Walker(config, name, journey, world, chosen, ready.model.for_templates(), at, assume)
    previews = []
    for customer in customer_ids:
        segment = _segment(chosen, customer)
        preview = JourneyPreview(name, customer, segment, at, False, "")
        entry = inside[customer]
        if entry is not None:
            preview.enters, preview.entry_no = True, int(entry["entry_no"])
            due = max(pd.Timestamp(entry["due_at"]).to_pydatetime(), at)
            preview.why = (
                f"Inside since {entry['entered_at']:%Y-%m-%d %H:%M} (entry {preview.entry_no}), "
                f"at step {entry['step']} since {entry['step_at']:%Y-%m-%d %H:%M}"
            )
            start = (str(entry["step"]), pd.Timestamp(entry["step_at"]).to_pydatetime(), due)
            entered = pd.Timestamp(entry["entered_at"]).to_pydatetime()
        else:
            number, why = _entry(name, journey, plan, chosen, history, customer, at)
            preview.why = why
            if number is None:
                previews.append(preview)
                continue
            preview.enters, preview.entry_no = True, number
            first = journey.steps[0].name
            due = walker.arrival(first, customer, at)
            start, entered = (first, at, due), at
        preview.visits, preview.end = walker.walk(customer, preview.entry_no, entered, *start)
        previews.append(preview)
    return previews


def _entry(
    name: str,
    journey: JourneyConfig,
    plan: Any,
    customers: pd.DataFrame,
    history: store.EntryHistory,
    customer: str,
    at: datetime,
) -> tuple[int | None, str]:
    """Whether a run at ``at`` enrols a customer who is not inside: (entry number, why), or
    (None, why not)."""
    if plan is None:
        return None, "the journey is disabled (enabled = false)"
    if plan.status != DUE:
        return None, f"its trigger does not fire at this time ({plan.status})"
    audience = plan.audience
    found = audience.loc[audience["customer_id"].astype(str) == customer]
    if found.empty:
        return None, _why_not(journey, customers, customer, at)
    occasion = str(found["window"].iloc[0])
    before = customer in history.last.index
    if before:
        known: dict[Any, Any] = history.last.loc[customer].to_dict()
        entered = history.entered
        last = int(known["last_entry"])
        if ((entered["customer_id"] == customer) & (entered["occasion"] == occasion)).any():
            return None, f"they entered on this occasion already ({occasion}, entry {last})"
        after = journey.reentry_after()
        if after is None:
            return None, f"reentry = 'never' and they entered before (entry {last})"
        finished = pd.Timestamp(known["finished_at"]).to_pydatetime()
        again = finished + parse_duration(after)
        if again > at:
            return None, (
                f"reentry = {journey.reentry!r}: their last entry (entry {last}) ended "
                f"{finished:%Y-%m-%d %H:%M}, so they may enter again from {again:%Y-%m-%d %H:%M}"
            )
        number = last + 1
    else:
        number = 1
    what = _trigger_text(journey)
    return number, f"Enters now (entry {number}): {what} ({occasion})"


def _trigger_text(journey: JourneyConfig) -> str:
    trigger = journey.trigger.model_dump(exclude_defaults=True, exclude={"type"})
    detail = ", ".join(f"{k} = {v}" for k, v in trigger.items())
    text = f"trigger {journey.trigger.type}" + (f" ({detail})" if detail else "")
    return text + (f", where {journey.where!r} holds" if journey.where else "")


def _segment(customers: pd.DataFrame, customer: str) -> str:
    row: dict[Any, Any] = customers.loc[customer].to_dict()
    return f"{int(row['segment_id'])} {row['segment']}"


def _why_not(journey: JourneyConfig, customers: pd.DataFrame, customer: str, at: datetime) -> str:
    """Why the entry's audience leaves a customer out: segment, condition or trigger."""
    row: dict[Any, Any] = customers.loc[customer].to_dict()
    if "*" not in journey.segments:
        wanted = {str(s).casefold() for s in journey.segments}
        if str(row["segment_id"]) not in wanted and str(row["segment"]).casefold() not in wanted:
            listed = ", ".join(map(str, journey.segments))
            return f"not in its segments ({listed}; they are in {_segment(customers, customer)})"
    condition = journey.condition()
    if condition is not None:
        result = condition.evaluate_rows(customers.loc[[customer]], at)
        if bool(np.asarray(result.errors)[0]):
            return f"its condition {journey.where!r} cannot be evaluated for them"
        if not bool(result.matches.to_numpy(dtype=bool)[0]):
            return f"its condition {journey.where!r} does not hold for them"
    return f"not triggered now: {_trigger_text(journey)}"


class _Walker:
    """Takes one customer from a step to the end of the journey."""

    def __init__(
        self,
        config: Config,
        name: str,
        journey: JourneyConfig,
        world: World,
        customers: pd.DataFrame,
        segments: Any,
        at: datetime,
        assume: Collection[str],
    ) -> None:
        from templates import make_environment

        self.config, self.name, self.journey, self.world = config, name, journey, world
        self.customers, self.segments, self.at, self.assume = customers, segments, at, assume
        limits = config.settings.limits
        self.env = make_environment(config.path(config.templates), limits.render_limits())
        self.tracker = Tracker.from_config(config)
        self.budget = RunRenderBudget(limits.run_render_seconds, limits.max_render_failure_share)

    def arrival(self, step: str, customer: str, at: datetime) -> datetime:
        zone = self.world.timezones.get(customer)
        due = arrival_due(self.journey, step, at, zone if isinstance(zone, str) else None)
        assert due is not None
        return due

    def _row(self, customer: str, when: datetime) -> pd.DataFrame:
        row = self.customers.loc[[customer]].copy()
        if "recency" in row:
            row["recency"] = row["recency"] + (when - self.at) / timedelta(days=1)
        return row

    def _holds(self, text: str, customer: str, when: datetime) -> bool:
        result = Condition.parse(text).evaluate_rows(self._row(customer, when), when)
        return bool(result.matches.to_numpy(dtype=bool)[0]) and not bool(
            np.asarray(result.errors)[0]
        )

    def _exit(self, customer: str, entered: datetime, when: datetime) -> str | None:
        world = self.world
        for item in self.journey.exit_when:
            if item == "converted":
                last = world.last_purchase.get(customer)
                if last is not None and pd.Timestamp(last) > pd.Timestamp(entered):
                    return item
            elif item == "unsubscribed":
                if customer in world.unsubscribed:
                    return item
            elif item == "left_segment":
                if (
                    world.segments is not None
                    and int(world.segment[customer]) not in world.segments
                ):
                    return item
            elif self._holds(item, customer, when):
                return item
        return None

    def _happened(self, step: StepConfig, customer: str, entry_no: int, since: datetime) -> bool:
        """Whether a wait_for's awaited thing has happened already (by what is known now)."""
        world = self.world
        if step.wait_for in ("click", "open"):
            assert step.on is not None
            from campaigns.journeys.runner import window

            return (customer, window(entry_no, step.on), step.wait_for) in world.events
        if step.wait_for == "conversion":
            last = world.last_purchase.get(customer)
            return last is not None and pd.Timestamp(last) > pd.Timestamp(since)
        return world.segments is not None and int(world.segment[customer]) not in world.segments

    def walk(
        self,
        customer: str,
        entry_no: int,
        entered: datetime,
        step: str,
        since: datetime,
        due: datetime,
    ) -> tuple[list[Visit], str]:
        visits: list[Visit] = []
        journey = self.journey
        while True:
            config = journey.step(step)
            when = max(due, self.at)
            reason = self._exit(customer, entered, when)
            if reason is not None:
                visits.append(Visit(step, config.kind, when, f"exit: {reason}", "exit"))
                return visits, f"exited: {reason}"
            branches = dict(journey.branches(config))
            waited = since if config.kind in ("wait", "wait_for") else None
            other: list[tuple[str, str]] = []
            message = None
            if config.kind == "send":
                outcome, target = "sent", branches["then"]
                message = self._message(customer, entry_no, step, when)
            elif config.kind == "wait":
                outcome, target = "waited", branches["then"]
            elif config.kind == "wait_for":
                assert config.wait_for is not None
                yes = HAPPENED[config.wait_for]
                if self._happened(config, customer, entry_no, since):
                    outcome, target = yes, branches["then"]
                    when = self.at
                    other = [("timeout", branches["else"])]
                elif config.wait_for in self.assume or step in self.assume:
                    outcome, target = f"{yes} (assumed)", branches["then"]
                    when = max(since, self.at)
                    other = [("timeout", branches["else"])]
                else:
                    outcome, target = "timeout", branches["else"]
                    other = [(yes, branches["then"])]
            elif config.kind == "split":
                assert config.split is not None
                holds = self._holds(config.split, customer, when)
                outcome, target = (
                    ("true", branches["then"]) if holds else ("false", branches["else"])
                )
                other = [("false", branches["else"])] if holds else [("true", branches["then"])]
            elif config.kind == "by_segment":
                sid = int(self.world.segment[customer])
                key, target = segment_branch(
                    journey, config, (sid, self.world.segment_names.get(sid, ""))
                )
                outcome = f"segment: {key}"
                other = sorted(
                    {(f"segment: {k}", t) for k, t in branches.items()} - {(outcome, target)}
                )
            else:
                target = random_branch(self.name, config, customer, entry_no)
                outcome = f"random: {target}"
                other = [(f"random: {t}", t) for _, t in branches.items() if t != target]
            done = target == EXIT
            visits.append(
                Visit(
                    step,
                    config.kind,
                    when,
                    outcome,
                    "completed" if done else target,
                    waited,
                    other,
                    message,
                )
            )
            if done:
                return visits, "completed"
            step, since = target, when
            due = self.arrival(step, customer, when)

    def _message(self, customer: str, entry_no: int, step: str, when: datetime) -> Message:
        quiet = self.config.settings.quiet_hours
        deferred = (
            deferred_until(self.customers["timezone"], when, quiet.start, quiet.end)
            if quiet is not None and "timezone" in self.customers
            else None
        )
        entry = pd.DataFrame({"customer_id": [customer], "entry_no": [entry_no], "step": [step]})
        frame = _compose(
            self.name,
            self.journey,
            entry,
            self._row(customer, when),
            self.segments,
            self.env,
            self.tracker,
            deferred,
            self.budget,
            when,
            0,
            self.config.settings.unsubscribe_base_url,
        )
        row = frame.iloc[0]
        later = deferred.get(customer) if deferred is not None else None
        error = row.get("last_error")
        return Message(
            subject=str(row["subject"] or ""),
            text=str(row["body_text"] or ""),
            html=row["body_html"] if isinstance(row["body_html"], str) else None,
            status=str(row["status"]),
            deferred_until=pd.Timestamp(later).to_pydatetime()
            if later is not None and not pd.isna(later)
            else None,
            error=str(error) if isinstance(error, str) else None,
        )
