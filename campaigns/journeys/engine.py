"""The journey state machine: given due entries and what is known about each customer, the one
move each entry makes now. A pure function of its inputs (no store, no clock), vectorised per
step, and the part the property tests drive.

An entry at a step is processed when it is due. First ``exit_when`` is checked (the entry exits
with the reason); then the step is taken:

- ``send``: its message is queued (unless the customer is capped: the entry waits, due, for a
  later run); on to ``then`` or the next step;
- ``wait``: it was due when the wait ended; on to ``then`` or the next step;
- ``wait_for``: if the awaited thing happened, ``then``; if the timeout passed, ``else``;
  otherwise it keeps waiting;
- ``split``: ``then`` if the condition holds for the customer, else ``else``;
- ``random``: one branch, by a hash of (journey, customer, entry, step) and the weights;
- ``by_segment``: the branch of the customer's segment (``*``: of any other; else the next step).

Arriving at a step sets when it is next due: now for send, split, random and by_segment (the run
takes it in its next round), the end of the wait (a duration, or the next local time on an
allowed weekday in the customer's timezone), or the wait_for's timeout (a run brings it forward
when the awaited thing happens). Branching to ``exit`` or past the last step completes the entry.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
import pandas as pd

from campaigns.config.journeys import EXIT, OTHER_SEGMENTS, JourneyConfig, StepConfig, WaitUntil
from campaigns.config.rules import parse_duration

ACTIVE = "active"
EXITED = "exited"
COMPLETED = "completed"

#: ``to_step`` of a move that ends the entry.
DONE = {EXITED: "exit", COMPLETED: "completed"}

#: The outcome of a wait_for whose awaited thing happened, by what it waited for.
HAPPENED = {"click": "clicked", "open": "opened", "conversion": "converted", "left_segment": "left"}


@dataclass(frozen=True)
class Facts:
    """What is known about each due entry now (arrays aligned with the entries).

    :param exit_reason: the first ``exit_when`` reason that holds, or None
    :param happened: for an entry at a wait_for step, whether the awaited thing happened
    :param holds: for an entry at a split step, whether its condition holds
    :param capped: for an entry at a send step, whether a frequency cap holds the message back
    :param timezone: the customer's own IANA timezone, or None (a local wait then uses its own)
    :param segment: the customer's segment as ``(id, name)``, for by_segment steps
    """

    exit_reason: npt.NDArray[np.object_]
    happened: npt.NDArray[np.bool_]
    holds: npt.NDArray[np.bool_]
    capped: npt.NDArray[np.bool_]
    timezone: npt.NDArray[np.object_] = field(default_factory=lambda: np.zeros(0, dtype=object))
    segment: npt.NDArray[np.object_] = field(default_factory=lambda: np.zeros(0, dtype=object))

    @classmethod
    def none(cls, n: int) -> Facts:
        return cls(
            np.full(n, None, dtype=object),
            np.zeros(n, dtype=bool),
            np.zeros(n, dtype=bool),
            np.zeros(n, dtype=bool),
            np.full(n, None, dtype=object),
            np.full(n, None, dtype=object),
        )


@dataclass(frozen=True)
class Decisions:
    """The moves of one round: ``moves`` (:data:`store.journeys.MOVE_COLUMNS` less ``seq``, plus
    ``seq``), ``updates`` (:data:`store.journeys.UPDATE_COLUMNS`) and ``sends``: the positions of
    the entries whose send step's message is queued with the move. Entries in neither wait."""

    moves: pd.DataFrame
    updates: pd.DataFrame
    sends: npt.NDArray[np.int64]
    held: int


def arrival_due(
    journey: JourneyConfig, step: str, at: datetime, timezone: str | None = None
) -> datetime | None:
    """When an entry arriving at ``step`` at ``at`` is next due (None: the journey ended);
    ``timezone``: the customer's own, for a wait until a local time."""
    if step == EXIT:
        return None
    config = journey.step(step)
    if isinstance(config.wait, WaitUntil):
        return next_local_time(config.wait, timezone, at)
    if config.wait is not None:
        return at + parse_duration(config.wait)
    if config.timeout is not None:
        return at + parse_duration(config.timeout)
    return at


def next_local_time(wait: WaitUntil, timezone: str | None, at: datetime) -> datetime:
    """The first time from ``at`` (naive UTC) that is ``wait.until`` on one of its weekdays in
    ``timezone`` (the wait's own when None), as naive UTC."""
    zone = ZoneInfo(timezone or wait.timezone)
    local = at.replace(tzinfo=ZoneInfo("UTC")).astimezone(zone)
    for days in range(8):
        day = (local + timedelta(days=days)).date()
        if day.weekday() not in wait.weekdays:
            continue
        when = datetime.combine(day, wait.until, tzinfo=zone)
        if when >= local:
            return when.astimezone(ZoneInfo("UTC")).replace(tzinfo=None)
    raise AssertionError("a week holds every weekday")  # pragma: no cover


def arrival_dues(
    journey: JourneyConfig,
    step: str,
    at: npt.NDArray[np.datetime64],
    timezones: npt.NDArray[np.object_],
) -> npt.NDArray[np.datetime64]:
    """:func:`arrival_due` for many entries: arriving at ``at`` (one time each), customers in
    ``timezones`` (None: none of their own). One computation per distinct (time, timezone)."""
    at = np.asarray(at, dtype="datetime64[ns]")
    config = journey.step(step)
    if not isinstance(config.wait, WaitUntil):
        delay = arrival_due(journey, step, datetime(2000, 1, 1))
        assert delay is not None
        offset = np.timedelta64(int((delay - datetime(2000, 1, 1)).total_seconds()), "s")
        return at + offset
    wait = config.wait
    keys = pd.DataFrame({"at": at, "zone": pd.Series(timezones, dtype=object).fillna("")})
    codes, uniques = pd.factorize(pd.MultiIndex.from_frame(keys))
    found = np.array(
        [
            np.datetime64(
                pd.Timestamp(next_local_time(wait, zone or None, pd.Timestamp(when))).as_unit("ns")
            )
            for when, zone in uniques
        ],
        dtype="datetime64[ns]",
    )
    return found[codes] if len(found) else at.copy()


def random_branch(journey_name: str, step: StepConfig, customer_id: str, entry_no: int) -> str:
    """The branch of a random split, fixed by a hash of journey, customer, entry and step."""
    assert step.random is not None
    digest = hashlib.sha256(f"{journey_name}:{customer_id}:{entry_no}:{step.name}".encode())
    point = int.from_bytes(digest.digest()[:8], "big") / 2**64
    total = sum(step.random.values())
    edge = 0.0
    for target, weight in step.random.items():
        edge += weight / total
        if point < edge:
            return target
    return list(step.random)[-1]


def segment_branch(
    journey: JourneyConfig, step: StepConfig, segment: tuple[int, str] | None
) -> tuple[str, str]:
    """The key of a by_segment step that a customer's segment ``(id, name)`` matches (its name,
    case aside, or its id; else ``*``), and where it goes (``*`` without a key of its own: the
    next step)."""
    assert step.by_segment is not None
    if segment is not None:
        sid, label = segment
        for key, target in step.by_segment.items():
            if key != OTHER_SEGMENTS and key.casefold() in (str(label).casefold(), str(sid)):
                return key, target
    return OTHER_SEGMENTS, dict(journey.branches(step))[f"by_segment.{OTHER_SEGMENTS}"]


def decide(
    name: str, journey: JourneyConfig, entries: pd.DataFrame, facts: Facts, at: datetime
) -> Decisions:
    """One move for each due entry (columns of :data:`store.journeys.ENTRY_COLUMNS`)."""
    n = len(entries)
    steps = entries["step"].to_numpy(dtype=object)
    step_at = pd.to_datetime(entries["step_at"]).to_numpy(dtype="datetime64[ns]")
    outcome = np.full(n, None, dtype=object)
    target = np.full(n, None, dtype=object)
    status = np.full(n, ACTIVE, dtype=object)
    reason = np.full(n, None, dtype=object)
    send = np.zeros(n, dtype=bool)
    exiting = np.array([r is not None for r in facts.exit_reason], dtype=bool)
    outcome[exiting] = np.char.add("exit: ", facts.exit_reason[exiting].astype(str)).astype(object)
    target[exiting] = EXIT
    status[exiting] = EXITED
    reason[exiting] = facts.exit_reason[exiting]
    now = np.datetime64(pd.Timestamp(at).as_unit("ns"))
    for step in journey.steps:
        here = (steps == step.name) & ~exiting
        if not here.any():
            continue
        branches = dict(journey.branches(step))
        kind = step.kind
        if kind == "send":
            go = here & ~facts.capped
            send |= go
            outcome[go] = "sent"
            target[go] = branches["then"]
        elif kind == "wait":
            outcome[here] = "waited"
            target[here] = branches["then"]
        elif kind == "wait_for":
            assert step.wait_for is not None
            assert step.timeout is not None
            yes = here & facts.happened
            ends = step_at + np.timedelta64(int(parse_duration(step.timeout).total_seconds()), "s")
            timed_out = here & ~facts.happened & (ends <= now)
            outcome[yes] = HAPPENED[step.wait_for]
            target[yes] = branches["then"]
            outcome[timed_out] = "timeout"
            target[timed_out] = branches["else"]
        elif kind == "split":
            yes = here & facts.holds
            no = here & ~facts.holds
            outcome[yes], target[yes] = "true", branches["then"]
            outcome[no], target[no] = "false", branches["else"]
        elif kind == "by_segment":
            for position in np.flatnonzero(here):
                segment = facts.segment[position] if len(facts.segment) else None
                key, chosen = segment_branch(journey, step, segment)
                outcome[position] = f"segment: {key}"
                target[position] = chosen
        else:
            ids = entries["customer_id"].to_numpy(dtype=object)
            numbers = entries["entry_no"].to_numpy()
            for position in np.flatnonzero(here):
                chosen = random_branch(name, step, str(ids[position]), int(numbers[position]))
                outcome[position] = f"random: {chosen}"
                target[position] = chosen
    moving = np.array([t is not None for t in target], dtype=bool)
    rows = np.flatnonzero(moving)
    completed = moving & ~exiting & (target == EXIT)
    status[completed] = COMPLETED
    active = status == ACTIVE
    new_step = target.copy()
    new_step[~active] = None
    to_step = target.copy()
    to_step[moving & ~active] = np.where(status[moving & ~active] == EXITED, "exit", "completed")
    # When each entry is next due: by the step it arrives at (one lookup per step, not per row).
    nat = np.datetime64("NaT", "ns")
    due = np.full(n, nat, dtype="datetime64[ns]")
    arrived = np.full(n, nat, dtype="datetime64[ns]")
    zones = facts.timezone if len(facts.timezone) else np.full(n, None, dtype=object)
    for step in journey.steps:
        going = moving & active & (new_step == step.name)
        if going.any():
            count = int(going.sum())
            due[going] = arrival_dues(journey, step.name, np.full(count, now), zones[going])
            arrived[going] = now
    moves = pd.DataFrame(
        {
            "entry_id": entries["id"].to_numpy()[rows],
            "seq": entries["moves"].to_numpy()[rows],
            "customer_id": entries["customer_id"].to_numpy(dtype=object)[rows],
            "step": steps[rows],
            "outcome": outcome[rows],
            "to_step": to_step[rows],
        }
    )
    updates = pd.DataFrame(
        {
            "id": entries["id"].to_numpy()[rows],
            "moves": entries["moves"].to_numpy()[rows],
            "status": status[rows],
            "step": new_step[rows],
            "step_at": arrived[rows],
            "due_at": due[rows],
            "exit_reason": reason[rows],
        }
    )
    held = int((~moving).sum())
    return Decisions(moves, updates, np.flatnonzero(send), held)
