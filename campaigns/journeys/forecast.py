"""Journeys in ``campaign forecast``: how many customers enter each day of the horizon, and how
many reach each step and take each branch, from today's state and the rates seen so far.

Who enters is the entry's own selection (trigger, segments, ``where``, re-entry rules) at one
run a day, the customers as they are now (recency grows with the days); a customer enters at most
once in the horizon. The entries inside now start from their step and its due time. Each entry
then goes through the steps as the engine takes them, with its time: a send or split at once, a
wait when it ends, a ``wait_for`` at its timeout. A ``wait_for`` sends the share of entries that
took ``then`` at that step so far (its moves in the store) down ``then`` and the rest down
``else``; with no history yet it uses :data:`DEFAULT_RATES` and says so. Splits and exits are
decided per customer on what is known now (conditions at the start, suppressions, segments);
purchases to come are not invented, so ``converted`` exits only those who bought already. The
counts are expected values (a share of an entry is counted as that share), and frequency caps,
which only delay a send, are not applied.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine

from campaigns.config.journeys import EXIT, JourneyConfig
from campaigns.config.schema import Config
from campaigns.journeys.engine import HAPPENED, arrival_dues, random_branch, segment_branch
from campaigns.journeys.runner import (
    admit,
    build_world,
    customer_timezones,
    entry_audience,
    last_purchases,
    occasions,
)
from campaigns.planner import PlanInputs
from campaigns.run import Prepared
from store import journeys as store

#: The share of entries assumed to see what a wait_for waits for, before any has been seen.
DEFAULT_RATES = {"click": 0.05, "open": 0.20, "conversion": 0.02, "left_segment": 0.02}


@dataclass
class StepForecast:
    """One step over the horizon (expected counts)."""

    name: str
    kind: str
    #: Entries at the step now (inside the journey at the start).
    inside_now: int = 0
    #: Entries arriving at the step within the horizon.
    reached: float = 0.0
    #: (outcome, target) -> entries taking that branch within the horizon.
    branches: defaultdict[tuple[str, str], float] = field(
        default_factory=lambda: defaultdict(float)
    )
    #: Entries still at the step at the end of the horizon.
    waiting_at_end: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "step": self.name,
            "kind": self.kind,
            "inside_now": self.inside_now,
            "reached": round(self.reached, 1),
            "branches": [
                {"outcome": o, "to": t, "entries": round(n, 1)}
                for (o, t), n in self.branches.items()
            ],
            "waiting_at_end": round(self.waiting_at_end, 1),
        }


@dataclass
class JourneyForecast:
    """A journey over the horizon: entries per day, and per step who reaches it and goes where."""

    journey: str
    inside_now: int
    #: Customers entering, per day of the horizon.
    entered: dict[str, int]
    steps: list[StepForecast]
    #: Per send step, the messages it queues per day (expected).
    messages: dict[str, defaultdict[str, float]]
    #: Per wait_for step: the share taking ``then``, and where that share comes from.
    rates: dict[str, tuple[float, str]]

    def to_json(self) -> dict[str, Any]:
        return {
            "journey": self.journey,
            "inside_now": self.inside_now,
            "entered_per_day": dict(self.entered),
            "messages_per_day": {
                step: {day: round(n, 1) for day, n in sorted(days.items())}
                for step, days in self.messages.items()
            },
            "steps": [s.to_json() for s in self.steps],
            "wait_for_rates": {
                step: {"then": round(rate, 4), "source": source}
                for step, (rate, source) in self.rates.items()
            },
        }


def then_rates(engine: Engine, name: str, journey: JourneyConfig) -> dict[str, tuple[float, str]]:
    """Per wait_for step, the share of its entries that took ``then`` so far (exits aside), or
    the default for what it waits for when none has left it yet."""
    moves = store.move_counts(engine, name)
    rates = {}
    for step in journey.steps:
        if step.wait_for is None:
            continue
        happened = HAPPENED[step.wait_for]
        mine = moves[moves["step"] == step.name] if not moves.empty else moves
        yes = int(mine.loc[mine["outcome"] == happened, "n"].sum()) if len(mine) else 0
        total = yes + (int(mine.loc[mine["outcome"] == "timeout", "n"].sum()) if len(mine) else 0)
        if total:
            rates[step.name] = (yes / total, f"{yes:,} of {total:,} entries so far")
        else:
            rate = DEFAULT_RATES[step.wait_for]
            rates[step.name] = (
                rate,
                f"no entry has left it yet: assumed {rate:.0%} (the default for a {step.wait_for})",
            )
    return rates


def run_days(start: datetime, days: int) -> list[datetime]:
    """The runs a journey's entries are counted at: the start, then noon UTC each day."""
    end = start + timedelta(days=days)
    noon = start.replace(hour=12, minute=0, second=0, microsecond=0)
    times = [start, *(noon + timedelta(days=d) for d in range(days + 1))]
    return sorted({t for t in times if start <= t < end})


def forecast_journeys(
    engine: Engine, config: Config, ready: Prepared, base: PlanInputs, start: datetime, days: int
) -> list[JourneyForecast]:
    """Every enabled journey over ``days`` days from ``start`` (see the module docstring)."""
    found = []
    for name, journey in config.journeys.items():
        if journey.enabled:
            found.append(_forecast(engine, config, name, journey, ready, base, start, days))
    return found


def _forecast(
    engine: Engine,
    config: Config,
    name: str,
    journey: JourneyConfig,
    ready: Prepared,
    base: PlanInputs,
    start: datetime,
    days: int,
) -> JourneyForecast:
    customers = ready.customers
    end = start + timedelta(days=days)
    history = store.entry_history(engine, name, customers["customer_id"])
    # Entries: one run a day, the history growing with who entered (they stay inside).
    entered: dict[str, int] = {}
    zones = customer_timezones(customers, pd.Index(customers["customer_id"].astype(str)))
    tokens: list[pd.DataFrame] = []
    first = journey.steps[0].name
    light = replace(base, history=base.history.iloc[0:0])
    for at in run_days(start, days):
        grown = customers.copy()
        if "recency" in grown:
            grown["recency"] = grown["recency"] + (at - start) / timedelta(days=1)
        day_inputs = replace(light, customers=grown, at=at)
        triggered = occasions(entry_audience(name, journey, day_inputs, ready.model.names))
        joining = admit(journey, triggered, history, at)
        day = f"{at:%Y-%m-%d}"
        entered[day] = entered.get(day, 0) + len(joining)
        if joining.empty:
            continue
        due = arrival_dues(
            journey,
            first,
            np.full(len(joining), np.datetime64(pd.Timestamp(at).as_unit("ns"))),
            zones.reindex(joining["customer_id"].astype(str)).to_numpy(dtype=object),
        )
        tokens.append(
            pd.DataFrame(
                {
                    "customer_id": joining["customer_id"].astype(str).to_numpy(dtype=object),
                    "entry_no": joining["entry_no"].to_numpy(dtype=np.int64),
                    "step": first,
                    "since": at,
                    "due": due,
                    "entered": at,
                    "weight": 1.0,
                    "new": True,
                }
            )
        )
        added = pd.DataFrame(
            {
                "last_entry": joining["entry_no"].to_numpy(),
                "active": True,
                "finished_at": pd.NaT,
            },
            index=pd.Index(joining["customer_id"].astype(str), dtype=object, name="customer_id"),
        )
        history = store.EntryHistory(
            last=pd.concat([history.last[~history.last.index.isin(added.index)], added]),
            entered=pd.concat(
                [history.entered, joining[["customer_id", "occasion"]]], ignore_index=True
            ),
        )
    inside = store.active_entries(engine, name)
    if len(inside):
        tokens.append(
            pd.DataFrame(
                {
                    "customer_id": inside["customer_id"].astype(str).to_numpy(dtype=object),
                    "entry_no": inside["entry_no"].to_numpy(dtype=np.int64),
                    "step": inside["step"].to_numpy(dtype=object),
                    "since": pd.to_datetime(inside["step_at"]).to_numpy(dtype="datetime64[ns]"),
                    "due": np.maximum(
                        pd.to_datetime(inside["due_at"]).to_numpy(dtype="datetime64[ns]"),
                        np.datetime64(pd.Timestamp(start).as_unit("ns")),
                    ),
                    "entered": pd.to_datetime(inside["entered_at"]).to_numpy(
                        dtype="datetime64[ns]"
                    ),
                    "weight": 1.0,
                    "new": False,
                }
            )
        )
    lines = {s.name: StepForecast(s.name, s.kind) for s in journey.steps}
    for step, n in inside["step"].value_counts().items() if len(inside) else ():
        if str(step) in lines:
            lines[str(step)].inside_now = int(n)
    rates = then_rates(engine, name, journey)
    messages: dict[str, defaultdict[str, float]] = {
        s.name: defaultdict(float) for s in journey.steps if s.send
    }
    if tokens:
        everyone = pd.concat(tokens, ignore_index=True)
        ids = everyone["customer_id"].unique()
        chosen = customers.loc[customers.index.intersection(pd.Index(ids))]
        world = build_world(
            engine,
            name,
            journey,
            chosen,
            _last_purchases(chosen, ready, start),
            base,
            ready.model.names,
            start,
        )
        _flow(name, journey, world, everyone, lines, messages, rates, start, end)
    return JourneyForecast(
        journey=name,
        inside_now=len(inside),
        entered=entered,
        steps=list(lines.values()),
        messages=messages,
        rates=rates,
    )


def _flow(
    name: str,
    journey: JourneyConfig,
    world: Any,
    tokens: pd.DataFrame,
    lines: dict[str, StepForecast],
    messages: dict[str, defaultdict[str, float]],
    rates: dict[str, tuple[float, str]],
    start: datetime,
    end: datetime,
) -> None:
    """Move the tokens (entries, or shares of them) through the steps in order: branches only
    go forward, so one pass over the steps takes every token as far as the horizon lets it."""
    horizon = np.datetime64(pd.Timestamp(end).as_unit("ns"))
    pending: dict[str, list[pd.DataFrame]] = {s.name: [] for s in journey.steps}
    for step, group in tokens.groupby("step", sort=False):
        if str(step) in pending:
            pending[str(step)].append(group)
    for config in journey.steps:
        if not pending[config.name]:
            continue
        here = pd.concat(pending[config.name], ignore_index=True)
        line = lines[config.name]
        due = here["due"].to_numpy(dtype="datetime64[ns]")
        later = due >= horizon
        line.waiting_at_end += float(here.loc[later, "weight"].sum())
        here = here.loc[~later].reset_index(drop=True)
        if here.empty:
            continue
        weight = here["weight"].to_numpy(dtype=float)
        when = here["due"].to_numpy(dtype="datetime64[ns]")
        facts = world.facts(
            journey,
            pd.DataFrame(
                {
                    "customer_id": here["customer_id"],
                    "entry_no": here["entry_no"],
                    "step": "",  # exits only: what each step awaits is forecast from rates
                    "step_at": here["since"],
                    "entered_at": here["entered"],
                }
            ),
            start,
        )
        reason = facts.exit_reason
        exiting = np.array([r is not None for r in reason], dtype=bool)
        for item in dict.fromkeys(r for r in reason if r is not None):
            chosen = exiting & (reason == item)
            line.branches[(f"exit: {item}", "exit")] += float(weight[chosen].sum())
        staying = ~exiting
        branches = dict(journey.branches(config))
        moves: list[tuple[str, str, np.ndarray, np.ndarray]] = []  # outcome, target, rows, share
        rows = np.flatnonzero(staying)
        if config.kind == "send":
            moves.append(("sent", branches["then"], rows, np.ones(len(rows))))
            days = (
                pd.Series(weight[rows])
                .groupby(pd.to_datetime(when[rows]).strftime("%Y-%m-%d"))
                .sum()
            )
            for day, n in days.items():
                messages[config.name][str(day)] += float(n)
        elif config.kind == "wait":
            moves.append(("waited", branches["then"], rows, np.ones(len(rows))))
        elif config.kind == "wait_for":
            assert config.wait_for is not None
            rate = rates[config.name][0]
            moves.append(
                (HAPPENED[config.wait_for], branches["then"], rows, np.full(len(rows), rate))
            )
            moves.append(("timeout", branches["else"], rows, np.full(len(rows), 1 - rate)))
        elif config.kind == "split":
            holds = (
                world.splits[config.name]
                .reindex(here["customer_id"])
                .fillna(False)
                .to_numpy(dtype=bool)
            )
            yes, no = rows[holds[rows]], rows[~holds[rows]]
            moves.append(("true", branches["then"], yes, np.ones(len(yes))))
            moves.append(("false", branches["else"], no, np.ones(len(no))))
        elif config.kind == "by_segment":
            sids = world.segment.reindex(here["customer_id"]).to_numpy(dtype=float)
            keys = np.empty(len(here), dtype=object)
            targets = np.empty(len(here), dtype=object)
            for sid in np.unique(sids[rows]):
                segment = (
                    None if np.isnan(sid) else (int(sid), world.segment_names.get(int(sid), ""))
                )
                key, target = segment_branch(journey, config, segment)
                same = rows[sids[rows] == sid] if not np.isnan(sid) else rows[np.isnan(sids[rows])]
                keys[same], targets[same] = key, target
            for key, target in dict.fromkeys(zip(keys[rows], targets[rows], strict=True)):
                picked = rows[(keys[rows] == key) & (targets[rows] == target)]
                moves.append((f"segment: {key}", str(target), picked, np.ones(len(picked))))
        else:
            drawn = np.array(
                [
                    random_branch(name, config, str(c), int(n))
                    for c, n in zip(
                        here["customer_id"].to_numpy()[rows],
                        here["entry_no"].to_numpy()[rows],
                        strict=True,
                    )
                ],
                dtype=object,
            )
            for target in dict.fromkeys(drawn):
                picked = rows[drawn == target]
                moves.append((f"random: {target}", str(target), picked, np.ones(len(picked))))
        for outcome, target, picked, share in moves:
            if len(picked) == 0 or not share.any():
                continue
            taken = weight[picked] * share
            label = "completed" if target == EXIT else target
            line.branches[(outcome, label)] += float(taken.sum())
            if target == EXIT:
                continue
            arrived = when[picked]
            following = here.iloc[picked].assign(
                step=target,
                since=arrived,
                due=arrival_dues(
                    journey,
                    target,
                    arrived,
                    world.timezones.reindex(here["customer_id"].to_numpy()[picked]).to_numpy(
                        dtype=object
                    ),
                ),
                weight=taken,
            )
            lines[target].reached += float(taken[arrived < horizon].sum())
            pending[target].append(following)


def _last_purchases(customers: pd.DataFrame, ready: Prepared, at: datetime) -> pd.Series:
    """Each customer's last purchase (naive UTC, by customer id): the store's aggregates when
    the run read them, else from the features (recency is the exact days since it, for those
    who bought), not the whole log; the log when the features lack them."""
    if ready.last_purchase is not None:
        return ready.last_purchase
    if not {"recency", "frequency"} <= set(customers.columns):
        return last_purchases(ready.shop.transactions, at)
    bought = customers[customers["frequency"] > 0]
    when = pd.Timestamp(at) - pd.to_timedelta(bought["recency"].to_numpy(dtype=float), unit="D")
    return pd.Series(
        when.to_numpy(), index=pd.Index(bought["customer_id"].astype(str), dtype=object)
    )
