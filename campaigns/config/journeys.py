"""Config models of journeys: multi-step flows read top to bottom (``[journeys.NAME]``).

A journey has an entry (a trigger of those campaigns use, and an optional ``where``), exits
checked before every step (``exit_when``), a re-entry rule, and ordered, named steps. Each step
is exactly one of::

    send = "TEMPLATE"            a message, as a campaign sends it (channel, subject, caps)
    wait = "3d"                  a pause
    wait = { until = "09:00", on = ["mon"] }
                                 until a local time (on some weekdays), in the customer's
                                 ``timezone`` (else the wait's ``timezone``, UTC by default)
    wait_for = "click"           click | open (of an earlier send step, ``on``), conversion,
                                 left_segment; ``timeout``, then ``then`` / ``else``
    split = "CONDITION"          ``then`` when the condition holds, ``else`` otherwise
    random = { a = 1, b = 1 }    one of the named steps, at random by weight
    by_segment = { VIP = "a", "*" = "b" }
                                 the step of the customer's segment (a name or id; ``*``: any
                                 other segment; without ``*`` the others go on to the next step)

A branch (``then``, ``else``, a ``random`` key) names a later step or ``"exit"``; without one a
step goes on to the next step in order, and the last step completes the journey. Branches only go
forward, so a journey always ends and never loops.
"""

from __future__ import annotations

import re
from datetime import time
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)

from campaigns.conditions import Condition, ConditionError
from campaigns.config.rules import Cap, Trigger, check_timezone, parse_duration

#: A branch target that leaves the journey (status completed).
EXIT = "exit"

#: exit_when keywords; any other item is a condition.
EXIT_KEYWORDS = ("converted", "unsubscribed", "left_segment")

#: What a wait_for may wait for.
WAIT_FOR = ("click", "open", "conversion", "left_segment")

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]

#: Weekdays of a ``wait = { until = ..., on = [...] }``, Monday first.
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

#: The ``by_segment`` key of every segment not named.
OTHER_SEGMENTS = "*"

STEP_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_REENTRY = re.compile(r"^\s*after\s+(\S+)\s*$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True, populate_by_name=True)


def _condition(value: str) -> str:
    try:
        Condition.parse(value)
    except ConditionError as exc:
        raise ValueError(str(exc)) from None
    return value


class WaitUntil(_Model):
    """A wait until the next local ``until`` time on one of the weekdays ``on``, in the
    customer's own timezone (their ``timezone`` trait), else in ``timezone``."""

    until: time
    on: list[Weekday] = Field(default_factory=lambda: list(WEEKDAYS), min_length=1)
    #: The timezone of customers without one of their own.
    timezone: str = "UTC"

    @field_validator("until", mode="before")
    @classmethod
    def _clock(cls, value: object) -> object:
        if isinstance(value, str) and not re.fullmatch(r"\d{1,2}:\d{2}", value.strip()):
            raise ValueError(f"must be a local time such as '09:00', got {value!r}")
        return value

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        return check_timezone(value)

    @property
    def weekdays(self) -> frozenset[int]:
        """The weekdays as numbers, Monday 0."""
        return frozenset(WEEKDAYS.index(d) for d in self.on)


def _wait_form(value: object) -> str:
    return "tag:until" if isinstance(value, dict | WaitUntil) else "tag:duration"


#: ``wait``: a duration ("3d") or a local time (``{ until = "09:00", on = [...] }``), told apart
#: by its form so that a mistake in one is not also reported as not being the other.
Wait = Annotated[
    Annotated[str, Tag("tag:duration")] | Annotated[WaitUntil, Tag("tag:until")],
    Discriminator(_wait_form),
]


class StepConfig(_Model):
    """One step of a journey (see the module docstring)."""

    name: str
    # send
    send: str | None = None
    subject: str = ""
    #: The channel of this message; by default the journey's.
    channel: str | None = None
    #: Frequency caps counting this journey's messages (global caps always apply).
    caps: list[Cap] = Field(default_factory=list)
    # wait
    wait: Wait | None = None
    # wait_for
    wait_for: Literal["click", "open", "conversion", "left_segment"] | None = None
    #: The send step whose message a click or open is awaited on.
    on: str | None = None
    timeout: str | None = None
    # split
    split: str | None = None
    random: dict[str, float] | None = None
    #: The arm of a random split the others are compared with in ``campaign report`` (default:
    #: the holdout, an arm to ``exit``, if there is one, else the first arm).
    control: str | None = None
    by_segment: dict[str, str] | None = None
    # branches
    then: str | None = None
    else_: str | None = Field(default=None, alias="else")
    #: Earlier names of this step (a live edit renamed it): entries at one of them are at it.
    moved_from: list[str] = Field(default_factory=list)

    @field_validator("moved_from", mode="before")
    @classmethod
    def _one_or_more(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value

    @field_validator("moved_from")
    @classmethod
    def _old_names(cls, value: list[str]) -> list[str]:
        for old in value:
            if not STEP_NAME.match(old) or old == EXIT:
                raise ValueError(f"{old!r} is not a step name")
        return value

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not STEP_NAME.match(value):
            raise ValueError(
                f"must be lowercase letters, digits, '-' or '_' (at most 64), got {value!r}"
            )
        if value == EXIT:
            raise ValueError("'exit' is reserved: a branch to 'exit' leaves the journey")
        return value

    @field_validator("wait", "timeout")
    @classmethod
    def _duration(cls, value: str | WaitUntil | None) -> str | WaitUntil | None:
        if isinstance(value, str):
            parse_duration(value)
        return value

    @field_validator("by_segment")
    @classmethod
    def _segments(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        if value is not None and not value:
            raise ValueError(
                "names no segment; write by_segment = { SEGMENT = 'STEP', '*' = 'STEP' }"
            )
        return value

    @field_validator("split")
    @classmethod
    def _parses(cls, value: str | None) -> str | None:
        return _condition(value) if value is not None else None

    @field_validator("random")
    @classmethod
    def _weights(cls, value: dict[str, float] | None) -> dict[str, float] | None:
        if value is not None:
            if len(value) < 2:
                raise ValueError("needs at least two branches, such as { a = 1, b = 1 }")
            for target, weight in value.items():
                if weight <= 0:
                    raise ValueError(f"the weight of {target!r} must be positive, got {weight}")
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> StepConfig:
        kinds = [
            k
            for k, v in (
                ("send", self.send),
                ("wait", self.wait),
                ("wait_for", self.wait_for),
                ("split", self.split),
                ("random", self.random),
                ("by_segment", self.by_segment),
            )
            if v is not None
        ]
        if len(kinds) != 1:
            got = ", ".join(kinds) if kinds else "none"
            raise ValueError(
                "a step is exactly one of send, wait, wait_for, split, random or by_segment; "
                f"step {self.name!r} has {got}"
            )
        kind = kinds[0]
        if kind != "send" and (self.subject or self.channel is not None or self.caps):
            raise ValueError(f"subject, channel and caps belong to send steps, not {kind}")
        if kind == "wait_for":
            if self.timeout is None:
                raise ValueError(
                    f"wait_for needs a timeout (such as timeout = '3d'), or step {self.name!r} "
                    "could wait forever"
                )
            if self.wait_for in ("click", "open") and self.on is None:
                raise ValueError(
                    f"wait_for = {self.wait_for!r} needs on = 'STEP', the send step whose "
                    "message is clicked or opened"
                )
            if self.wait_for not in ("click", "open") and self.on is not None:
                raise ValueError(f"on applies to wait_for 'click' or 'open', not {self.wait_for!r}")
        else:
            if self.on is not None or self.timeout is not None:
                raise ValueError(f"on and timeout belong to wait_for steps, not {kind}")
        if kind in ("send", "wait") and self.else_ is not None:
            raise ValueError(f"a {kind} step has one way on (then), not else")
        if kind == "random" and (self.then is not None or self.else_ is not None):
            raise ValueError("a random split names its branches in random = { STEP = weight }")
        if self.control is not None:
            if kind != "random":
                raise ValueError(f"control belongs to random splits, not {kind}")
            assert self.random is not None
            if self.control not in self.random:
                raise ValueError(
                    f"control {self.control!r} is not one of the arms of random: "
                    + ", ".join(self.random)
                )
        if kind == "by_segment" and (self.then is not None or self.else_ is not None):
            raise ValueError(
                "a by_segment step names its branches in by_segment = { SEGMENT = 'STEP' }, "
                "with '*' for the other segments"
            )
        return self

    @property
    def kind(self) -> str:
        """send, wait, wait_for, split, random or by_segment."""
        for kind in ("send", "wait", "wait_for", "split", "random", "by_segment"):
            if getattr(self, kind) is not None:
                return kind
        raise AssertionError("validated: one kind")  # pragma: no cover

    def condition(self) -> Condition | None:
        return Condition.parse(self.split) if self.split is not None else None

    def control_arm(self) -> str:
        """The arm of a random split the others are compared with."""
        assert self.random is not None
        if self.control is not None:
            return self.control
        return EXIT if EXIT in self.random else next(iter(self.random))


class JourneyConfig(_Model):
    """A journey: who enters (segments, trigger, where), when they leave (exit_when), whether
    they may come back (reentry), and the steps they go through in order."""

    description: str = ""
    enabled: bool = True
    segments: list[str | int] = Field(default=["*"], min_length=1)
    trigger: Trigger
    where: str | None = None
    #: Checked before every step: converted (a purchase since entry), unsubscribed (from the
    #: journey's topic or everything), left_segment (no longer in ``segments``), or a condition.
    exit_when: list[str] = Field(default_factory=list)
    #: "never" (one entry per customer, ever) or "after 30d" (after the last entry ended).
    reentry: str = "never"
    #: The default channel of send steps.
    channel: str
    topic: str = "marketing"
    #: Tracked links and an open pixel in its messages (needs ``[tracking]``).
    track_links: bool = False
    steps: list[StepConfig] = Field(min_length=1)

    @field_validator("where")
    @classmethod
    def _parses(cls, value: str | None) -> str | None:
        return _condition(value) if value is not None else None

    @field_validator("exit_when")
    @classmethod
    def _exits(cls, value: list[str]) -> list[str]:
        for item in value:
            if item not in EXIT_KEYWORDS:
                try:
                    Condition.parse(item)
                except ConditionError as exc:
                    raise ValueError(
                        f"{item!r} is neither one of {', '.join(EXIT_KEYWORDS)} nor a "
                        f"condition ({exc})"
                    ) from None
        return value

    @field_validator("reentry")
    @classmethod
    def _reentry(cls, value: str) -> str:
        if value == "never":
            return value
        found = _REENTRY.match(value)
        if found is None:
            raise ValueError(
                f"must be 'never' or 'after DURATION' such as 'after 30d', got {value!r}"
            )
        parse_duration(found.group(1))
        return value

    @model_validator(mode="after")
    def _graph(self) -> JourneyConfig:
        # Messages start with the step's key ("steps[3].then: ..."): the loader turns that into
        # the key path and the line it is written on.
        seen: dict[str, int] = {}
        for index, step in enumerate(self.steps):
            if step.name in seen:
                raise ValueError(
                    f"steps[{index + 1}].name: a second step called {step.name!r} "
                    f"(the first is steps[{seen[step.name] + 1}])"
                )
            seen[step.name] = index
        renamed: dict[str, int] = {}
        for index, step in enumerate(self.steps):
            for old in step.moved_from:
                where = f"steps[{index + 1}].moved_from"
                if old in seen:
                    raise ValueError(
                        f"{where}: {old!r} is still a step; moved_from names a step's earlier "
                        "name, one the journey no longer has"
                    )
                if old in renamed:
                    raise ValueError(
                        f"{where}: {old!r} is already moved to step "
                        f"{self.steps[renamed[old]].name!r}; entries at one step go to one step"
                    )
                renamed[old] = index
        for index, step in enumerate(self.steps):
            for label, target in self.branches(step):
                key = label.split(".")[0]
                where = f"steps[{index + 1}].{key}"
                if target == EXIT:
                    continue
                if target not in seen:
                    raise ValueError(
                        f"{where}: step {step.name!r} goes to {target!r}, which is not a step; "
                        "steps: " + ", ".join(seen) + " (or 'exit')"
                    )
                if seen[target] <= index:
                    raise ValueError(
                        f"{where}: step {step.name!r} goes back to {target!r}; branches only go "
                        "forward (a journey reads top to bottom and never loops)"
                    )
            if step.on is not None:
                where = f"steps[{index + 1}].on"
                if step.on not in seen or seen[step.on] >= index:
                    raise ValueError(f"{where}: {step.on!r} is not an earlier step")
                if self.steps[seen[step.on]].kind != "send":
                    raise ValueError(f"{where}: {step.on!r} is not a send step")
        return self

    def branches(self, step: StepConfig) -> list[tuple[str, str]]:
        """Where a step can go: (label, target step or "exit"); the implicit next step included."""
        index = self.index(step.name)
        following = self.steps[index + 1].name if index + 1 < len(self.steps) else EXIT
        if step.kind == "random":
            assert step.random is not None
            return [(f"random.{target}", target) for target in step.random]
        if step.kind == "by_segment":
            assert step.by_segment is not None
            found = [(f"by_segment.{key}", target) for key, target in step.by_segment.items()]
            if OTHER_SEGMENTS not in step.by_segment:
                found.append((f"by_segment.{OTHER_SEGMENTS}", following))
            return found
        found = [("then", step.then if step.then is not None else following)]
        if step.kind in ("wait_for", "split"):
            found.append(("else", step.else_ if step.else_ is not None else following))
        return found

    def index(self, name: str) -> int:
        for index, step in enumerate(self.steps):
            if step.name == name:
                return index
        raise KeyError(name)

    def step(self, name: str) -> StepConfig:
        return self.steps[self.index(name)]

    def renames(self) -> dict[str, str]:
        """Earlier step names (``moved_from``) and the step each is now."""
        return {old: step.name for step in self.steps for old in step.moved_from}

    def reentry_after(self) -> str | None:
        """The re-entry wait as a duration ("30d"), or None for never."""
        found = _REENTRY.match(self.reentry)
        return found.group(1) if found else None

    def exit_conditions(self) -> list[Condition]:
        return [Condition.parse(item) for item in self.exit_when if item not in EXIT_KEYWORDS]

    def condition(self) -> Condition | None:
        return Condition.parse(self.where) if self.where is not None else None

    def unreachable(self) -> list[str]:
        """Steps no path from the first step reaches."""
        reached = {self.steps[0].name}
        for step in self.steps:  # forward-only: one pass in order finds every reachable step
            if step.name in reached:
                reached.update(t for _, t in self.branches(step) if t != EXIT)
        return [s.name for s in self.steps if s.name not in reached]
