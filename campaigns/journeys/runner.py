"""Journeys in ``campaign run``: enrol who the entry trigger selects, wake entries whose awaited
click, open, purchase or segment change happened, then advance every due entry, chunk by chunk,
in rounds until nothing due can move.

Each chunk's moves, their messages and the entries' new steps are one transaction
(:func:`store.journeys.apply_moves`); a message's idempotency key is
``JOURNEY:CUSTOMER:entryN:STEP``, so a replay cannot queue it twice.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import available_timezones

import numpy as np
import pandas as pd
from sqlalchemy import Engine

from campaigns.compose import RunRenderBudget, compose
from campaigns.config.journeys import OTHER_SEGMENTS, JourneyConfig
from campaigns.config.rules import Cap, SegmentTrigger, parse_duration
from campaigns.config.schema import CampaignConfig, Config
from campaigns.engagement.links import Tracker
from campaigns.errors import UnknownSegment
from campaigns.journeys.edits import Change, apply_edit
from campaigns.journeys.engine import (
    COMPLETED,
    EXITED,
    Facts,
    arrival_dues,
    decide,
)
from campaigns.planner import (
    DUE,
    CampaignPlan,
    PlanInputs,
    _audience,
    _Table,
    deferred_until,
    resolve_segments,
)
from store import journeys as store
from store import outbox
from store.bulk import read_frame

#: Entries read and moved per transaction.
CHUNK = 50_000

#: The exit reason of an entry whose customer is no longer in the data.
GONE = "no longer a customer"


def window(entry_no: int, step: str) -> str:
    """The outbox window of a journey message: its entry and step."""
    return f"entry{entry_no}:{step}"


@dataclass
class JourneyRun:
    """What a run did in one journey (each count says what it counts)."""

    journey: str
    #: Customers who entered it in this run.
    entered: int = 0
    #: Steps taken (an exit checked before a step is a move too).
    moves: int = 0
    #: Steps taken, by step.
    by_step: dict[str, int] = field(default_factory=dict)
    #: Messages the send steps queued in the outbox (the outbox's fates are in the run rows).
    messages: int = 0
    #: Entries that left on an exit_when reason, by reason.
    exited: dict[str, int] = field(default_factory=dict)
    #: Entries that reached the end (or an ``exit`` branch).
    completed: int = 0
    #: Entries woken because what they waited for happened.
    woken: int = 0
    #: Entries woken before their wait ended because an ``exit_when`` reason holds (they exit
    #: in this run, counted in ``exited``).
    woken_to_exit: int = 0
    #: Entries due at a send step whose message a frequency cap holds back (they stay due).
    capped: int = 0
    #: Steps of the last run's definition this run's config renamed or removed, with the
    #: entries it moved (``campaigns.journeys.edits``).
    edits: list[Change] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "journey": self.journey,
            "entered": self.entered,
            "moves": self.moves,
            "moves_by_step": dict(self.by_step),
            "messages": self.messages,
            "exited": dict(self.exited),
            "completed": self.completed,
            "woken": self.woken,
            "woken_to_exit": self.woken_to_exit,
            "capped": self.capped,
            "edits": [
                {"step": c.step, "change": c.kind, "to": c.to, "customers": c.customers}
                for c in self.edits
            ],
        }

    def sentence(self) -> str:
        parts = [f"{self.entered:,} entered", f"{self.moves:,} step moves"]
        if self.by_step:
            parts[-1] += " (" + ", ".join(f"{s} {n:,}" for s, n in self.by_step.items()) + ")"
        parts.append(f"{self.messages:,} messages queued")
        if self.exited:
            parts.append(
                "exited " + ", ".join(f"{n:,} {r}" for r, n in sorted(self.exited.items()))
            )
        parts.append(f"{self.completed:,} completed")
        if self.capped:
            parts.append(f"{self.capped:,} held by a frequency cap (due again when it allows)")
        edited = "".join(
            f"; edited: {c.sentence().removeprefix(self.journey + ': ')}" for c in self.edits
        )
        return f"journey {self.journey}: " + ", ".join(parts) + edited


def entry_campaign(journey: JourneyConfig) -> CampaignConfig:
    """The journey's entry as a campaign the planner understands (trigger, segments, where)."""
    return CampaignConfig(
        description=journey.description,
        enabled=journey.enabled,
        segments=journey.segments,
        trigger=journey.trigger,
        channel=journey.channel,
        template="-",
        where=journey.where,
    )


def entry_plans(config: Config) -> list[CampaignPlan]:
    """Each enabled journey's entry as an (empty) campaign plan, for what a run's watermark
    tells about when a per-customer trigger can next fire (``campaigns.idle.quiet_until``)."""
    empty = pd.DataFrame(columns=["customer_id", "segment_id", "window", "position"])
    return [
        CampaignPlan(name, entry_campaign(journey), DUE, None, empty, empty)
        for name, journey in config.journeys.items()
        if journey.enabled
    ]


def step_campaign(journey: JourneyConfig, step_name: str) -> CampaignConfig:
    """A send step as a campaign compose renders (template, subject, channel, topic, tracking)."""
    step = journey.step(step_name)
    assert step.send is not None
    return CampaignConfig(
        description=journey.description,
        segments=["*"],
        trigger=SegmentTrigger(type="segment_entered"),
        channel=step.channel or journey.channel,
        template=step.send,
        subject=step.subject,
        caps=step.caps,
        topic=journey.topic,
        track_links=journey.track_links,
    )


def entry_audience(
    name: str, journey: JourneyConfig, inputs: PlanInputs, segment_names: Mapping[int, str]
) -> CampaignPlan:
    """Who the entry's trigger, segments and condition select now (before re-entry rules)."""
    ids = resolve_segments(name, journey.segments, segment_names)
    open_inputs = replace(inputs, planned_windows=frozenset(), already_sent=lambda _c, _w: set())
    return _audience(name, entry_campaign(journey), ids, _Table.build(open_inputs), open_inputs, {})


def entrants(
    engine: Engine,
    name: str,
    journey: JourneyConfig,
    inputs: PlanInputs,
    segment_names: Mapping[int, str],
    at: datetime,
) -> pd.DataFrame:
    """Who enters now: ``customer_id``, ``entry_no``, ``occasion`` (:func:`admit`). The store's
    entries are read only for the customers the trigger selects, and only when it selects any."""
    if not journey.enabled:
        return pd.DataFrame(columns=["customer_id", "entry_no", "occasion"])
    triggered = occasions(entry_audience(name, journey, inputs, segment_names))
    if triggered.empty:
        return pd.DataFrame(columns=["customer_id", "entry_no", "occasion"])
    history = store.entry_history(engine, name, triggered["customer_id"])
    return admit(journey, triggered, history, at)


def occasions(plan: CampaignPlan) -> pd.DataFrame:
    """The customers an entry audience selects, with the occasion each enters on
    (``customer_id``, ``occasion``, both text); empty when its trigger is not due."""
    if plan.status != DUE or plan.audience.empty:
        return pd.DataFrame({"customer_id": [], "occasion": []}, dtype=object)
    audience = plan.audience[["customer_id", "window"]].rename(columns={"window": "occasion"})
    return audience.astype({"customer_id": str, "occasion": str}).reset_index(drop=True)


def admit(
    journey: JourneyConfig, triggered: pd.DataFrame, history: store.EntryHistory, at: datetime
) -> pd.DataFrame:
    """Of the ``triggered`` customers (:func:`occasions`), who enters: re-entry rules leave out
    the active, those who entered on this occasion, and (``reentry = "never"``) anyone who
    entered before or (``"after 30d"``) whose last entry ended less than that ago."""
    known = history.last.reindex(triggered["customer_id"].to_numpy())
    before = known["last_entry"].notna().to_numpy()
    keep = ~known["active"].fillna(False).astype(bool).to_numpy()
    pairs = pd.MultiIndex.from_frame(triggered[["customer_id", "occasion"]])
    keep &= ~pairs.isin(pd.MultiIndex.from_frame(history.entered[["customer_id", "occasion"]]))
    after = journey.reentry_after()
    if after is None:
        keep &= ~before
    else:
        finished = pd.to_datetime(known["finished_at"]).to_numpy(dtype="datetime64[ns]")
        limit = np.datetime64(pd.Timestamp(at - parse_duration(after)).as_unit("ns"))
        keep &= ~before | (finished <= limit)
    chosen = triggered.loc[keep].copy()
    chosen["entry_no"] = known["last_entry"].fillna(0).astype(int).to_numpy()[keep] + 1
    return chosen[["customer_id", "entry_no", "occasion"]].reset_index(drop=True)


@dataclass
class World:
    """What a run knows about every customer, for one journey: built once per run."""

    customers: pd.DataFrame
    segment: pd.Series
    last_purchase: pd.Series
    unsubscribed: set[str]
    #: The journey's segment ids (None: every segment, so nobody leaves it).
    segments: set[int] | None
    #: Per exit condition, whether it holds, by customer id.
    exit_conditions: list[tuple[str, pd.Series]]
    #: Per split step, whether its condition holds, by customer id.
    splits: dict[str, pd.Series]
    #: (customer_id, window, kind) of human clicks and opens on the journey's messages.
    events: set[tuple[str, str, str]]
    #: Each customer's own IANA timezone (missing: none), by customer id.
    timezones: pd.Series = field(default_factory=lambda: pd.Series(dtype=object))
    #: Segment names by id (by_segment steps).
    segment_names: Mapping[int, str] = field(default_factory=dict)

    def facts(self, journey: JourneyConfig, entries: pd.DataFrame, at: datetime) -> Facts:
        """Exit reasons, awaited events and split conditions for each of ``entries``."""
        n = len(entries)
        facts = Facts.none(n)
        if n == 0:
            return facts
        ids = entries["customer_id"].astype(str).to_numpy(dtype=object)
        known = self.segment.index.get_indexer(pd.Index(ids, dtype=object)) >= 0
        entered = pd.to_datetime(entries["entered_at"]).to_numpy(dtype="datetime64[ns]")
        step_at = pd.to_datetime(entries["step_at"]).to_numpy(dtype="datetime64[ns]")
        bought = self.last_purchase.reindex(ids).to_numpy(dtype="datetime64[ns]")
        segment = self.segment.reindex(ids).to_numpy(dtype=float)
        outside = (
            np.zeros(n, dtype=bool)
            if self.segments is None
            else known & ~np.isin(segment, list(self.segments))
        )
        reason = facts.exit_reason
        reason[~known] = GONE
        for item in journey.exit_when:
            free = pd.isna(reason).astype(bool)
            if item == "converted":
                hit = ~np.isnat(bought) & (bought > entered)
            elif item == "unsubscribed":
                hit = np.isin(ids, list(self.unsubscribed))
            elif item == "left_segment":
                hit = outside
            else:
                series = dict(self.exit_conditions)[item]
                hit = series.reindex(ids).fillna(False).to_numpy(dtype=bool)
            reason[free & hit] = item
        facts.timezone[:] = self.timezones.reindex(ids).to_numpy(dtype=object)
        facts.timezone[pd.isna(facts.timezone)] = None
        if any(s.by_segment is not None for s in journey.steps):
            for row, sid in enumerate(segment.tolist()):
                if not np.isnan(sid):
                    facts.segment[row] = (int(sid), self.segment_names.get(int(sid), ""))
        steps = entries["step"].to_numpy(dtype=object)
        numbers = entries["entry_no"].to_numpy()
        for step in journey.steps:
            here = steps == step.name
            if not here.any():
                continue
            if step.wait_for in ("click", "open"):
                assert step.on is not None
                kind = step.wait_for
                # The send step's message may carry an earlier name of it (moved_from).
                names = [step.on, *journey.step(step.on).moved_from]
                for position in np.flatnonzero(here):
                    facts.happened[position] = any(
                        (str(ids[position]), window(int(numbers[position]), on), kind)
                        in self.events
                        for on in names
                    )
            elif step.wait_for == "conversion":
                facts.happened[here] = (~np.isnat(bought) & (bought > step_at))[here]
            elif step.wait_for == "left_segment":
                facts.happened[here] = outside[here]
            elif step.split is not None:
                holds = self.splits[step.name].reindex(ids).fillna(False).to_numpy(dtype=bool)
                facts.holds[here] = holds[here]
        return facts


def last_purchases(transactions: pd.DataFrame, at: datetime) -> pd.Series:
    """Each customer's last purchase up to ``at`` (naive UTC, indexed by customer id as text),
    from the lines: a purchase is a line of an invoice not cancelled ("C...") and not negative,
    as the store's aggregates count one (``last_order_at``)."""
    invoiced = pd.to_datetime(transactions["invoiced_at"])
    if invoiced.dt.tz is not None:
        invoiced = invoiced.dt.tz_convert("UTC").dt.tz_localize(None)
    amount = transactions["quantity"] * transactions["unit_price"]
    cancelled = transactions["invoice"].astype(str).str.startswith("C")
    moment = pd.Timestamp(at)
    if moment.tz is not None:
        moment = moment.tz_convert("UTC").tz_localize(None)
    bought = (invoiced <= moment) & ~cancelled & (amount >= 0)
    last = invoiced[bought].groupby(transactions.loc[bought, "customer_id"].astype(str)).max()
    return last.rename("last_purchase")


def build_world(
    engine: Engine,
    name: str,
    journey: JourneyConfig,
    customers: pd.DataFrame,
    last_purchase: pd.Series,
    inputs: PlanInputs,
    segment_names: Mapping[int, str],
    at: datetime,
) -> World:
    frame = customers.reset_index(drop=True)
    index = pd.Index(frame["customer_id"].astype(str), dtype=object)

    def evaluate(text: str) -> pd.Series:
        from campaigns.conditions import Condition

        result = Condition.parse(text).evaluate_rows(frame, at)
        matches = result.matches.to_numpy(dtype=bool) & ~np.asarray(result.errors, dtype=bool)
        return pd.Series(matches, index=index)

    unsubscribed = set(map(str, inputs.suppressed))
    unsubscribed |= set(map(str, inputs.topic_suppressed.get(journey.topic, ())))
    if journey.topic != "transactional":
        unsubscribed |= set(map(str, inputs.topic_suppressed.get("*", ())))
    segments = (
        None
        if "*" in journey.segments
        else set(resolve_segments(name, journey.segments, segment_names))
    )
    events: set[tuple[str, str, str]] = set()
    if any(s.wait_for in ("click", "open") for s in journey.steps):
        found = store.awaited_events(engine, name, at)
        events = {
            (str(c), str(w), str(k))
            for c, w, k in zip(found["customer_id"], found["window"], found["kind"], strict=True)
        }
    for number, step in enumerate(journey.steps, start=1):
        for key in step.by_segment or {}:
            if key != OTHER_SEGMENTS and not (
                key.casefold() in {label.casefold() for label in segment_names.values()}
                or (key.isdigit() and int(key) in segment_names)
            ):
                known = "; ".join(
                    f"{sid} = {label!r}" for sid, label in sorted(segment_names.items())
                )
                raise UnknownSegment(
                    f"journeys.{name}.steps[{number}].by_segment: no segment {key!r}; the "
                    f"current segments are: {known}"
                )
    return World(
        timezones=customer_timezones(frame, index),
        segment_names=dict(segment_names),
        customers=frame,
        segment=pd.Series(frame["segment_id"].to_numpy(dtype=np.int64), index=index),
        last_purchase=last_purchase,
        unsubscribed=unsubscribed,
        segments=segments,
        exit_conditions=[
            (item, evaluate(item))
            for item in journey.exit_when
            if item not in ("converted", "unsubscribed", "left_segment")
        ],
        splits={s.name: evaluate(s.split) for s in journey.steps if s.split is not None},
        events=events,
    )


def customer_timezones(frame: pd.DataFrame, index: pd.Index) -> pd.Series:
    """Each customer's ``timezone`` trait by id when it names an IANA timezone (missing
    otherwise: a local wait then uses its own)."""
    if "timezone" not in frame:
        return pd.Series(dtype=object)
    zones = pd.Series(frame["timezone"].to_numpy(dtype=object), index=index)
    valid = available_timezones()
    known = {z for z in zones.dropna().unique() if isinstance(z, str) and z in valid}
    return zones.where(zones.isin(known))


class CapCounter:
    """Messages per customer inside each frequency cap's period and in this run, counting the
    messages this run queues as it goes."""

    def __init__(
        self,
        engine: Engine,
        config: Config,
        name: str,
        journey: JourneyConfig,
        at: datetime,
        run_id: int,
    ) -> None:
        self.config = config
        self.name = name
        self.at = at
        caps = [*config.settings.caps, *(c for s in journey.steps for c in s.caps)]
        longest = max((c.period for c in caps), default=timedelta(0))
        self.history = (
            outbox.history(engine, at - longest)
            if caps
            else pd.DataFrame(columns=["customer_id", "campaign", "created_at"])
        )
        this_run = read_frame(
            engine,
            "SELECT customer_id FROM message WHERE run_id = :r AND status NOT IN "
            "('held_out', 'render_failed')",
            params={"r": run_id},
        )
        self.run_counts = this_run["customer_id"].astype(str).value_counts()
        self.added: list[pd.DataFrame] = []

    def _window(self, period: timedelta, campaign: str | None) -> pd.DataFrame:
        """Per customer, messages inside the period (``n``) and when the oldest leaves it."""
        frame = pd.concat([self.history, *self.added], ignore_index=True)
        times = pd.to_datetime(frame["created_at"])
        chosen = (times > pd.Timestamp(self.at - period)) & (times <= pd.Timestamp(self.at))
        if campaign is not None:
            chosen &= frame["campaign"] == campaign
        inside = pd.DataFrame(
            {"customer_id": frame.loc[chosen, "customer_id"].astype(str), "t": times[chosen]}
        )
        grouped = inside.groupby("customer_id")["t"]
        return pd.DataFrame({"n": grouped.size(), "lifts": grouped.min() + period})

    def capped(
        self, journey: JourneyConfig, entries: pd.DataFrame
    ) -> tuple[np.ndarray, np.ndarray]:
        """For entries at send steps, whether a cap holds their message back, and the earliest
        time it could stop holding it (the run's time when only the per-run limit does: the
        next run may send it)."""
        n = len(entries)
        held = np.zeros(n, dtype=bool)
        at = np.datetime64(pd.Timestamp(self.at).as_unit("ns"))
        lifts = np.full(n, at, dtype="datetime64[ns]")
        if n == 0:
            return held, lifts
        ids = entries["customer_id"].astype(str)
        limit = self.config.settings.max_messages_per_customer_per_run
        held |= self.run_counts.reindex(ids).fillna(0).to_numpy() >= limit
        steps = entries["step"].to_numpy(dtype=object)
        checks: list[tuple[Cap, str | None, np.ndarray]] = [
            (cap, None, np.ones(n, dtype=bool)) for cap in self.config.settings.caps
        ]
        for step in journey.steps:
            checks += [(cap, self.name, steps == step.name) for cap in step.caps]
        for cap, campaign, applies in checks:
            found = self._window(cap.period, campaign).reindex(ids)
            over = applies & (found["n"].fillna(0).to_numpy() >= cap.messages)
            held |= over
            later = found["lifts"].to_numpy(dtype="datetime64[ns]")
            lifts[over] = np.maximum(lifts[over], later[over])
        return held, lifts

    def record(self, customer_ids: pd.Series) -> None:
        ids = customer_ids.astype(str)
        self.added.append(
            pd.DataFrame({"customer_id": ids, "campaign": self.name, "created_at": self.at})
        )
        self.run_counts = self.run_counts.add(ids.value_counts(), fill_value=0)


def wake(
    engine: Engine, name: str, journey: JourneyConfig, world: World, at: datetime
) -> tuple[int, int]:
    """Make due now the waiting entries (at a wait or wait_for, or held by a cap) whose awaited
    click, open, purchase or segment change happened, or for whom an ``exit_when`` reason holds
    (a customer who buys while waiting exits at this run, not when the wait ends). Reads the
    waiting entries a chunk at a time (by id); the checks are the vectorised ones of
    :meth:`World.facts`. Returns (woken for what they waited for, woken to exit)."""
    if not journey.exit_when and not any(s.wait_for is not None for s in journey.steps):
        return 0, 0
    woken = exiting = 0
    after = 0
    while True:
        asleep = store.waiting_entries(engine, name, at, after, CHUNK)
        if asleep.empty:
            break
        after = int(asleep["id"].max())
        facts = world.facts(journey, asleep, at)
        leaving = pd.notna(facts.exit_reason).astype(bool)
        ids = asleep["id"].to_numpy()
        exiting += store.wake(engine, ids[leaving], at)
        woken += store.wake(engine, ids[facts.happened & ~leaving], at)
    return woken, exiting


def advance_journeys(
    engine: Engine,
    config: Config,
    customers: pd.DataFrame,
    last_purchase: pd.Series,
    segments: Mapping[int, Mapping[str, Any]],
    inputs: PlanInputs,
    segment_names: Mapping[int, str],
    at: datetime,
    run_id: int,
    report: Callable[[str, int, int | None], None] | None = None,
) -> list[JourneyRun]:
    """Enrol, wake and advance every enabled journey at ``at`` (see the module docstring)."""
    results: list[JourneyRun] = []
    if not config.journeys:
        return results
    from templates import make_environment

    env = make_environment(config.path(config.templates), config.settings.limits.render_limits())
    tracker = Tracker.from_config(config)
    quiet = config.settings.quiet_hours
    deferred = (
        deferred_until(customers["timezone"], at, quiet.start, quiet.end)
        if quiet is not None and "timezone" in customers
        else None
    )
    limits = config.settings.limits
    budget = RunRenderBudget(limits.run_render_seconds, limits.max_render_failure_share)
    for name, journey in config.journeys.items():
        if not journey.enabled:
            continue
        if report is not None:
            report(f"Journey {name}", 0, None)
        result = JourneyRun(name)
        # A changed definition first: renamed and removed steps' entries move (or the run is
        # refused if they would be stranded), in one transaction with the new definition.
        result.edits = apply_edit(engine, name, journey, at, run_id)
        joining = entrants(engine, name, journey, inputs, segment_names, at)
        world = build_world(
            engine, name, journey, customers, last_purchase, inputs, segment_names, at
        )
        first = journey.steps[0].name
        due = arrival_dues(
            journey,
            first,
            np.full(len(joining), np.datetime64(pd.Timestamp(at).as_unit("ns"))),
            world.timezones.reindex(joining["customer_id"].astype(str)).to_numpy(dtype=object),
        )
        result.entered = store.enrol(engine, name, joining, first, due, at)
        result.woken, result.woken_to_exit = wake(engine, name, journey, world, at)
        caps = CapCounter(engine, config, name, journey, at, run_id)
        _advance(
            engine,
            config,
            name,
            journey,
            world,
            caps,
            customers,
            segments,
            env,
            tracker,
            deferred,
            budget,
            at,
            run_id,
            result,
        )
        results.append(result)
    return results


def _advance(
    engine: Engine,
    config: Config,
    name: str,
    journey: JourneyConfig,
    world: World,
    caps: CapCounter,
    customers: pd.DataFrame,
    segments: Mapping[int, Mapping[str, Any]],
    env: Any,
    tracker: Tracker | None,
    deferred: pd.Series | None,
    budget: RunRenderBudget,
    at: datetime,
    run_id: int,
    result: JourneyRun,
) -> None:
    """Rounds of chunks of due entries, until a round moves nobody (a journey only goes
    forward, so at most one round per step)."""
    send_steps = {s.name for s in journey.steps if s.send is not None}
    held: set[int] = set()  # entries a cap held back in this run (some are tried each round)
    for _round in range(len(journey.steps) + 2):
        after = 0
        moved_in_round = 0
        while True:
            entries = store.due_entries(engine, name, at, after, CHUNK)
            if entries.empty:
                break
            after = int(entries["id"].max())
            facts = world.facts(journey, entries, at)
            at_send = np.isin(entries["step"].to_numpy(dtype=object), list(send_steps))
            lifts = np.zeros(0, dtype="datetime64[ns]")
            if at_send.any():
                capped = np.zeros(len(entries), dtype=bool)
                lifts = np.full(len(entries), np.datetime64("NaT", "ns"))
                capped[at_send], lifts[at_send] = caps.capped(journey, entries.loc[at_send])
                facts = replace(
                    facts,
                    capped=capped & np.array([r is None for r in facts.exit_reason], dtype=bool),
                )
                held.update(entries.loc[facts.capped, "id"].astype(int).tolist())
            decisions = decide(name, journey, entries, facts, at)
            messages = _compose(
                name,
                journey,
                entries.iloc[decisions.sends],
                customers,
                segments,
                env,
                tracker,
                deferred,
                budget,
                at,
                run_id,
                config.settings.unsubscribe_base_url,
            )
            moved = store.apply_moves(
                engine, name, messages, decisions.moves, decisions.updates, at, run_id
            )
            if facts.capped.any():
                # Due again when the cap can first let them through (not before: a run in
                # between has nothing to do for them, and may then find nothing due at all).
                later = facts.capped & (lifts > np.datetime64(pd.Timestamp(at).as_unit("ns")))
                store.postpone(
                    engine,
                    entries.loc[later, "id"].to_numpy(),
                    entries.loc[later, "moves"].to_numpy(),
                    lifts[later],
                )
            if not messages.empty:
                sent = messages[messages["status"] == "queued"]
                caps.record(sent["customer_id"])
            moved_in_round += moved
            result.moves += moved
            result.messages += len(messages)
            for step, n in decisions.moves["step"].value_counts().items():
                result.by_step[str(step)] = result.by_step.get(str(step), 0) + int(n)
            ended = decisions.updates
            for reason, n in (
                ended.loc[ended["status"] == EXITED, "exit_reason"].value_counts().items()
            ):
                result.exited[str(reason)] = result.exited.get(str(reason), 0) + int(n)
            result.completed += int((ended["status"] == COMPLETED).sum())
        result.capped = len(held)
        if moved_in_round == 0:
            break


def _compose(
    name: str,
    journey: JourneyConfig,
    entries: pd.DataFrame,
    customers: pd.DataFrame,
    segments: Mapping[int, Mapping[str, Any]],
    env: Any,
    tracker: Tracker | None,
    deferred: pd.Series | None,
    budget: RunRenderBudget,
    at: datetime,
    run_id: int,
    unsubscribe_base: str,
) -> pd.DataFrame:
    """The outbox rows of the send steps these entries take now."""
    frames = []
    for step, group in entries.groupby("step", sort=False):
        ids = group["customer_id"].astype(str)
        selected = pd.DataFrame(
            {
                "customer_id": ids.to_numpy(dtype=object),
                "segment_id": customers["segment_id"].reindex(ids).to_numpy(dtype=np.int64),
                "window": [window(int(n), str(step)) for n in group["entry_no"].to_numpy()],
                "position": np.arange(len(group)),
            }
        )
        campaign = step_campaign(journey, str(step))
        plan = CampaignPlan(name, campaign, DUE, None, selected, selected)
        frames.append(
            compose(
                plan,
                customers,
                segments,
                env,
                at,
                run_id,
                unsubscribe_base,
                set(),
                deferred=deferred,
                budget=budget,
                tracker=tracker,
            )
        )
    if not frames:
        return pd.DataFrame()
    return pd.concat(frames, ignore_index=True)
