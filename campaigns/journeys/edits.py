"""Edits of a live journey: what a changed ``[journeys.NAME]`` does to the customers inside.

Each run that advances a journey stores its definition (per step, in order: name, kind, single
way on, the send step a wait_for watches; :func:`definition`). The next run compares the config
with it, like a migration:

- a step whose old name a step lists in ``moved_from`` is renamed: its entries are at the new
  step, their times kept;
- a removed step: its entries move to the step that followed it in the stored definition (its
  single way on; through further removed steps to the first that is left, or to the end, which
  completes them); they arrive there now;
- stranded, and refused: entries at a step that is gone with no ``moved_from`` and nothing to
  follow (it branched, or the store has no definition yet), and entries at a ``wait_for`` that
  now watches another send step than the one whose message they wait on.

:func:`plan_edit` is a pure function of the config, the stored definition and the entries per
step; the run applies an edit in one transaction with the new definition
(:func:`store.journeys.apply_edit`), so each move is recorded once across crashes and runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from campaigns.config.journeys import EXIT, JourneyConfig
from campaigns.config.schema import Config
from campaigns.errors import ConfigError
from campaigns.journeys.engine import arrival_due
from store import journeys as store

#: Where a removed last step's entries go: past the end, the entry is completed.
COMPLETED = "completed"


def definition(journey: JourneyConfig) -> list[dict[str, Any]]:
    """What the store keeps of a journey's steps, in order."""
    steps = []
    for step in journey.steps:
        targets = list(dict.fromkeys(t for _, t in journey.branches(step)))
        steps.append(
            {
                "name": step.name,
                "kind": step.kind,
                "successor": targets[0] if len(targets) == 1 else None,
                "on": step.on,
            }
        )
    return steps


@dataclass(frozen=True)
class Change:
    """A step of the stored definition the config renamed or removed, and its entries."""

    journey: str
    step: str
    #: "renamed" or "removed".
    kind: str
    #: The step its entries go to, or "completed" (a removed step the journey ended after).
    to: str
    customers: int

    def sentence(self) -> str:
        people = f"{self.customers:,} customer{'s' if self.customers != 1 else ''}"
        if self.kind == "renamed":
            return f"{self.journey}: step {self.step!r} renamed {self.to!r} (moved_from): {people}"
        where = "complete the journey" if self.to == COMPLETED else f"move to {self.to!r}"
        return f"{self.journey}: step {self.step!r} removed: {people} {where}"


@dataclass(frozen=True)
class Stranded:
    """Entries an edit would leave nowhere to go."""

    journey: str
    step: str
    customers: int
    why: str

    def sentence(self) -> str:
        people = f"{self.customers:,} customer{'s' if self.customers != 1 else ''}"
        return (
            f"journeys.{self.journey}: step {self.step!r}: {people} would be stranded: {self.why}"
        )


@dataclass(frozen=True)
class JourneyEdit:
    """What the config does to a journey's entries, against the stored definition."""

    journey: str
    changes: list[Change] = field(default_factory=list)
    stranded: list[Stranded] = field(default_factory=list)
    #: The definition to store (the config's).
    steps: list[dict[str, Any]] = field(default_factory=list)
    #: Whether it differs from the stored one (or none is stored).
    new: bool = False


def plan_edit(
    name: str,
    journey: JourneyConfig,
    stored: list[dict[str, Any]] | None,
    waiting: Mapping[str, int],
) -> JourneyEdit:
    """The changes and strandings of ``journey`` against ``stored``, with ``waiting`` the
    active entries per step name."""
    steps = definition(journey)
    current = {s.name for s in journey.steps}
    renames = journey.renames()
    old = {s["name"]: s for s in stored or []}
    order = [s["name"] for s in stored or []]
    # Steps entries are at that the stored definition does not know (entries older than it).
    order += [s for s in waiting if s not in old and s not in order]
    changes: list[Change] = []
    stranded: list[Stranded] = []
    for step in order:
        if step in current:
            continue
        count = int(waiting.get(step, 0))
        if step in renames:
            changes.append(Change(name, step, "renamed", renames[step], count))
            continue
        target = _follower(step, old, current, renames)
        if target is None:
            if count:
                why = (
                    "it branches, so it has no single next step to move them to"
                    if step in old
                    else "the store does not know the step that followed it"
                )
                stranded.append(
                    Stranded(
                        name,
                        step,
                        count,
                        f"it is no longer in the journey and {why}; if a step replaces it, "
                        f"say so with moved_from = {step!r} on that step",
                    )
                )
            continue
        changes.append(Change(name, step, "removed", target, count))
    # A wait_for whose entries wait on a message the edited step no longer watches.
    for index, config in enumerate(journey.steps):
        if config.wait_for not in ("click", "open") or config.on is None:
            continue
        before = next((o for o in [config.name, *config.moved_from] if o in old), None)
        if before is None or old[before].get("on") is None:
            continue
        was = str(old[before]["on"])
        if was == config.on or was in journey.step(config.on).moved_from:
            continue
        count = int(waiting.get(before, 0))
        if count:
            stranded.append(
                Stranded(
                    name,
                    config.name,
                    count,
                    f"they wait for a {config.wait_for} on step {was!r}'s message, and "
                    f"steps[{index + 1}].on is now {config.on!r}; if {config.on!r} is "
                    f"{was!r} renamed, say so with moved_from = {was!r} on it",
                )
            )
    return JourneyEdit(name, changes, stranded, steps, stored != steps)


def _follower(
    step: str, old: Mapping[str, Mapping[str, Any]], current: set[str], renames: Mapping[str, str]
) -> str | None:
    """Where the entries of a removed step go: its stored way on, followed through other
    removed steps (the stored definition only goes forward, so this ends); None if a step on
    the way branches or is unknown."""
    seen: set[str] = set()
    while step in old and step not in seen:
        seen.add(step)
        successor = old[step].get("successor")
        if successor is None:
            return None
        successor = str(successor)
        if successor == EXIT:
            return COMPLETED
        if successor in current:
            return successor
        if successor in renames:
            return renames[successor]
        step = successor
    return None


def journey_edits(engine: Engine, config: Config, at: datetime) -> list[JourneyEdit]:
    """The edit of each enabled journey against what the store knows."""
    found = []
    for name, journey in config.journeys.items():
        if not journey.enabled:
            continue
        counts = store.journey_counts(engine, name, at)
        waiting = {str(s): int(n) for s, n in zip(counts["step"], counts["active"], strict=True)}
        found.append(plan_edit(name, journey, store.stored_definition(engine, name), waiting))
    return found


class StrandedError(ConfigError):
    """An edit of a live journey would leave customers at a step with nowhere to go."""


def refuse_stranding(edits: list[JourneyEdit]) -> None:
    """Raise :class:`StrandedError` naming every stranding of ``edits``."""
    stranded = [s for edit in edits for s in edit.stranded]
    if stranded:
        lines = [s.sentence() for s in stranded]
        raise StrandedError(
            "an edit of a live journey would strand customers (nothing was run):\n- "
            + "\n- ".join(lines)
        )


def apply_edit(
    engine: Engine, name: str, journey: JourneyConfig, at: datetime, run_id: int
) -> list[Change]:
    """Apply the config's edit of ``journey`` to its entries and store its definition, in one
    transaction (refused if it would strand anyone). Returns the changes with the entries each
    moved."""
    counts = store.journey_counts(engine, name, at)
    waiting = {str(s): int(n) for s, n in zip(counts["step"], counts["active"], strict=True)}
    edit = plan_edit(name, journey, store.stored_definition(engine, name), waiting)
    refuse_stranding([edit])
    if not edit.new:
        return []
    moves = [
        store.EditMove(
            change.step,
            None if change.to == COMPLETED else change.to,
            None
            if change.kind == "renamed" or change.to == COMPLETED
            else arrival_due(journey, change.to, at),
        )
        for change in edit.changes
    ]
    moved = store.apply_edit(engine, name, moves, edit.steps, at, run_id)
    by_step = {m.old: n for m, n in zip(moves, moved, strict=True)}
    return [Change(c.journey, c.step, c.kind, c.to, by_step.get(c.step, 0)) for c in edit.changes]
