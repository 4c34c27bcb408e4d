"""The journey state machine, driven by Hypothesis: generated journeys and histories of events,
advanced over runs at generated times, as ``campaign run`` advances them (rounds of due entries
until nothing moves). Checked: no step is taken twice by an entry, every move follows a branch
of the step it leaves, no due step is left behind by a run (but for a cap), sends happen only at
send steps, once each, an entry whose exit_when holds when it is due exits before any other
step, a wait until a local time ends at that time on an allowed weekday in the customer's
timezone (or the wait's), and a by_segment step sends each customer down their segment's branch."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from campaigns.config.journeys import EXIT, WEEKDAYS, JourneyConfig, WaitUntil
from campaigns.journeys.engine import (
    ACTIVE,
    Facts,
    arrival_due,
    decide,
    random_branch,
    segment_branch,
)

START = datetime(2026, 11, 23, 12, 0)
KINDS = ("send", "wait", "wait_for", "split", "wait_until", "by_segment", "random")
ZONES = (None, "UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Pacific/Chatham")
SEGMENTS = (None, (1, "Regulars"), (2, "Lapsed"), (3, "VIP"))


@st.composite
def journeys(draw: st.DrawFn) -> JourneyConfig:
    """A valid journey: 1 to 7 steps, each branch forward (or to exit)."""
    n = draw(st.integers(1, 7))
    names = [f"s{i}" for i in range(n)]
    steps: list[dict[str, Any]] = []
    for i, name in enumerate(names):
        later = [*names[i + 1 :], EXIT]
        kind = draw(st.sampled_from(KINDS if len(later) > 2 else KINDS[:6]))
        step: dict[str, Any] = {"name": name}
        if kind == "send":
            step["send"] = "t"
        elif kind == "wait":
            step["wait"] = f"{draw(st.integers(1, 72))}h"
        elif kind == "wait_for":
            sends = [s["name"] for s in steps if "send" in s]
            what = draw(
                st.sampled_from(["conversion", "left_segment", *(["click"] if sends else [])])
            )
            step["wait_for"] = what
            if what == "click":
                step["on"] = draw(st.sampled_from(sends))
            step["timeout"] = f"{draw(st.integers(1, 96))}h"
        elif kind == "split":
            step["split"] = "frequency >= 2"
        elif kind == "wait_until":
            step["wait"] = {
                "until": f"{draw(st.integers(0, 23)):02d}:{draw(st.sampled_from([0, 30, 45])):02d}",
                "on": draw(
                    st.lists(st.sampled_from(WEEKDAYS), min_size=1, max_size=7, unique=True)
                ),
                "timezone": draw(st.sampled_from(ZONES[1:])),
            }
        elif kind == "by_segment":
            keys = draw(
                st.lists(st.sampled_from(["Regulars", "lapsed", "3", "*"]), min_size=1, unique=True)
            )
            step["by_segment"] = {key: draw(st.sampled_from(later)) for key in keys}
        else:
            targets = draw(
                st.lists(st.sampled_from(later[:-1]), min_size=2, max_size=3, unique=True)
            )
            if len(targets) < 2:
                targets = [*targets, *later[:-1]][:2]
            if len(set(targets)) < 2:
                step = {"name": name, "split": "frequency >= 2"}
            else:
                step["random"] = {t: draw(st.integers(1, 5)) for t in targets}
        if "random" not in step and "by_segment" not in step:
            if draw(st.booleans()):
                step["then"] = draw(st.sampled_from(later))
            if ("wait_for" in step or "split" in step) and draw(st.booleans()):
                step["else"] = draw(st.sampled_from(later))
        steps.append(step)
    exits = draw(st.lists(st.sampled_from(["converted", "unsubscribed"]), unique=True))
    return JourneyConfig.model_validate(
        {
            "trigger": {"type": "inactive", "days": 30},
            "channel": "c",
            "exit_when": exits,
            "steps": steps,
        }
    )


@st.composite
def worlds(draw: st.DrawFn) -> dict[str, Any]:
    """Customers with the times (hours after the start) when things happen to them."""
    count = draw(st.integers(1, 6))
    hour = st.one_of(st.none(), st.integers(0, 200))
    return {
        "customers": [
            {
                "exit_at": draw(hour),
                "event_at": draw(hour),
                "holds": draw(st.booleans()),
                "capped_at": draw(st.sets(st.integers(0, 10), max_size=3)),
                "timezone": draw(st.sampled_from(ZONES)),
                "segment": draw(st.sampled_from(SEGMENTS)),
            }
            for _ in range(count)
        ],
        "runs": sorted(draw(st.sets(st.integers(0, 240), min_size=1, max_size=12))),
    }


class Sim:
    """An in-memory store with what ``store.journeys.apply_moves`` guarantees."""

    def __init__(self, journey: JourneyConfig, world: dict[str, Any]) -> None:
        self.journey = journey
        self.world = world
        first = journey.steps[0].name
        self.entries = [
            {
                "id": i + 1,
                "customer_id": f"C{i}",
                "entry_no": 1,
                "step": first,
                "step_at": START,
                "entered_at": START,
                "moves": 0,
                "due_at": arrival_due(journey, first, START, c["timezone"]),
                "status": ACTIVE,
            }
            for i, c in enumerate(world["customers"])
        ]
        self.paths: dict[int, list[tuple[str, str, str]]] = {e["id"]: [] for e in self.entries}
        #: (customer, step, arrived, due) of every arrival at a step.
        self.arrivals = [(e["customer_id"], first, START, e["due_at"]) for e in self.entries]
        self.sends: list[tuple[int, str]] = []
        self.send_hours: list[tuple[str, float]] = []
        self.run_number = 0

    def facts(self, due: pd.DataFrame, at: datetime) -> Facts:
        hours = (at - START) / timedelta(hours=1)
        facts = Facts.none(len(due))
        for position, row in enumerate(due.itertuples()):
            c = self.world["customers"][int(row.customer_id[1:])]
            if c["exit_at"] is not None and c["exit_at"] <= hours and self.journey.exit_when:
                facts.exit_reason[position] = self.journey.exit_when[0]
            facts.happened[position] = c["event_at"] is not None and c["event_at"] <= hours
            facts.holds[position] = c["holds"]
            facts.capped[position] = self.run_number in c["capped_at"]
            facts.timezone[position] = c["timezone"]
            facts.segment[position] = c["segment"]
        return facts

    def run(self, at: datetime) -> None:
        for _round in range(len(self.journey.steps) + 2):
            due = [e for e in self.entries if e["status"] == ACTIVE and e["due_at"] <= at]
            if not due:
                return
            frame = pd.DataFrame(due)
            facts = self.facts(frame, at)
            decisions = decide("j", self.journey, frame, facts, at)
            for position in decisions.sends:
                entry = due[position]
                self.sends.append((entry["id"], entry["step"]))
                self.send_hours.append((entry["customer_id"], (at - START) / timedelta(hours=1)))
            for move, update in zip(
                decisions.moves.to_dict("records"),
                decisions.updates.to_dict("records"),
                strict=True,
            ):
                entry = next(e for e in self.entries if e["id"] == move["entry_id"])
                assert move["seq"] == entry["moves"]
                self.paths[entry["id"]].append((move["step"], move["outcome"], move["to_step"]))
                if update["status"] == ACTIVE:
                    self.arrivals.append(
                        (
                            entry["customer_id"],
                            update["step"],
                            update["step_at"],
                            update["due_at"].to_pydatetime(),
                        )
                    )
                entry.update(
                    moves=entry["moves"] + 1,
                    status=update["status"],
                    step=update["step"],
                    step_at=update["step_at"],
                    due_at=datetime.max if pd.isna(update["due_at"]) else update["due_at"],
                )
            if decisions.moves.empty:
                return


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(journey=journeys(), world=worlds())
def test_the_state_machine_never_repeats_or_skips_a_step_and_always_exits(
    journey: JourneyConfig, world: dict[str, Any]
) -> None:
    sim = Sim(journey, world)
    for number, hour in enumerate(world["runs"]):
        sim.run_number = number
        at = START + timedelta(hours=hour)
        sim.run(at)
        for entry in sim.entries:
            c = world["customers"][int(entry["customer_id"][1:])]
            if entry["status"] != ACTIVE or entry["due_at"] > at:
                continue
            # Still due after the run: only a send held back by a cap in this run.
            assert journey.step(entry["step"]).send is not None
            assert number in c["capped_at"]
    for entry in sim.entries:
        path = sim.paths[entry["id"]]
        taken = [step for step, _, _ in path]
        assert len(taken) == len(set(taken)), f"a step taken twice: {path}"
        current = journey.steps[0].name
        for step, outcome, to in path:
            assert step == current, f"skipped from {current} to {step}: {path}"
            if outcome.startswith("exit: "):
                assert to == "exit"
                break
            targets = {t for _, t in journey.branches(journey.step(step))}
            assert (to if to != "completed" else EXIT) in targets, (step, outcome, to)
            current = to
        # Exits: once exit_when held at a run where the entry was due, it exited then.
        if path and path[-1][1].startswith("exit: "):
            assert entry["status"] == "exited"
    sends = sim.sends
    assert len(sends) == len(set(sends)), "a message queued twice"
    for entry_id, step in sends:
        assert journey.step(step).send is not None
        assert (step, "sent") in {(s, o) for s, o, _ in sim.paths[entry_id]}
    # No message once exit_when holds.
    for customer_id, hours in sim.send_hours:
        exit_at = world["customers"][int(customer_id[1:])]["exit_at"]
        assert not journey.exit_when or exit_at is None or exit_at > hours
    # A wait until a local time ends at that time, on an allowed weekday, within a week, in the
    # customer's own timezone (else the wait's); every other step is due on arrival or after
    # its duration.
    for customer_id, step_name, arrived, due in sim.arrivals:
        c = world["customers"][int(customer_id[1:])]
        wait = journey.step(step_name).wait
        if isinstance(wait, WaitUntil):
            local = due.replace(tzinfo=ZoneInfo("UTC")).astimezone(
                ZoneInfo(c["timezone"] or wait.timezone)
            )
            assert arrived <= due < arrived + timedelta(days=7, hours=1), (arrived, due)
            assert (local.hour, local.minute) == (wait.until.hour, wait.until.minute)
            assert WEEKDAYS[local.weekday()] in wait.on
        else:
            assert due == arrival_due(journey, step_name, arrived)
    # A by_segment step sends each customer down their segment's branch.
    for entry in sim.entries:
        c = world["customers"][int(entry["customer_id"][1:])]
        for step, outcome, to in sim.paths[entry["id"]]:
            config = journey.step(step)
            if config.by_segment is not None and not outcome.startswith("exit: "):
                key, target = segment_branch(journey, config, c["segment"])
                assert outcome == f"segment: {key}"
                assert (to if to != "completed" else EXIT) == target
                if c["segment"] is not None and key != "*":
                    assert key.casefold() in (c["segment"][1].casefold(), str(c["segment"][0]))
    # After an exit_when holds at a run, an entry moved at that run exits and sends nothing more.
    for entry in sim.entries:
        c = world["customers"][int(entry["customer_id"][1:])]
        if c["exit_at"] is None or not journey.exit_when:
            continue
        path = sim.paths[entry["id"]]
        exits = [i for i, (_, o, _) in enumerate(path) if o.startswith("exit: ")]
        assert len(exits) <= 1
        if exits:
            assert exits[0] == len(path) - 1


def test_a_wait_for_takes_then_on_the_event_and_else_on_timeout() -> None:
    journey = JourneyConfig.model_validate(
        {
            "trigger": {"type": "inactive", "days": 30},
            "channel": "c",
            "steps": [
                {"name": "note", "send": "t"},
                {
                    "name": "w",
                    "wait_for": "click",
                    "on": "note",
                    "timeout": "3d",
                    "then": "yes",
                    "else": "no",
                },
                {"name": "yes", "send": "t", "then": "exit"},
                {"name": "no", "send": "t"},
            ],
        }
    )
    frame = pd.DataFrame(
        {
            "id": [1, 2, 3],
            "customer_id": ["a", "b", "c"],
            "entry_no": [1, 1, 1],
            "step": ["w", "w", "w"],
            "step_at": [START] * 3,
            "entered_at": [START] * 3,
            "moves": [1, 1, 1],
        }
    )
    facts = replace(Facts.none(3), happened=np.array([True, False, False]))
    early = decide(
        "j",
        journey,
        frame.iloc[:2].reset_index(drop=True),
        replace(Facts.none(2), happened=np.array([True, False])),
        START + timedelta(days=1),
    )
    assert early.moves["outcome"].tolist() == ["clicked"]
    assert early.updates["step"].tolist() == ["yes"]
    late = decide("j", journey, frame, facts, START + timedelta(days=3))
    assert late.moves["outcome"].tolist() == ["clicked", "timeout", "timeout"]
    assert late.moves["to_step"].tolist() == ["yes", "no", "no"]


def test_a_random_split_is_fixed_per_entry_and_follows_the_weights() -> None:
    journey = JourneyConfig.model_validate(
        {
            "trigger": {"type": "inactive", "days": 30},
            "channel": "c",
            "steps": [
                {"name": "r", "random": {"a": 3, "b": 1}},
                {"name": "a", "send": "t", "then": "exit"},
                {"name": "b", "send": "t"},
            ],
        }
    )
    step = journey.step("r")
    chosen = [random_branch("j", step, f"C{i}", 1) for i in range(4000)]
    assert chosen == [random_branch("j", step, f"C{i}", 1) for i in range(4000)]
    assert 0.72 < chosen.count("a") / 4000 < 0.78


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        (
            [{"name": "a", "send": "t", "then": "b"}],
            "steps\\[1\\].then: step 'a' goes to 'b', which is not a step",
        ),
        (
            [{"name": "a", "wait": "1d"}, {"name": "b", "send": "t", "then": "a"}],
            "goes back to 'a'; branches only go forward",
        ),
        ([{"name": "a", "wait_for": "conversion"}], "wait_for needs a timeout"),
        ([{"name": "a", "send": "t", "wait": "1d"}], "exactly one of send, wait"),
        ([{"name": "a", "wait_for": "click", "timeout": "1d"}], "needs on = 'STEP'"),
        ([{"name": "a", "send": "t"}, {"name": "a", "wait": "1d"}], "a second step called 'a'"),
    ],
)
def test_a_bad_journey_is_refused_with_the_reason(
    steps: list[dict[str, Any]], message: str
) -> None:
    with pytest.raises(ValidationError, match=message.replace("(", r"\(")):
        JourneyConfig.model_validate(
            {"trigger": {"type": "inactive", "days": 30}, "channel": "c", "steps": steps}
        )
