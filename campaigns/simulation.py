"""The forecast's simulation, planning each customer only when its inputs change.

A campaign that fires every minute makes a 14-day forecast simulate 20,160 runs. Planning each one
in full (:func:`campaigns.forecast.simulate_plainly`) costs the whole customer table every time,
although from one minute to the next almost nothing changes. One customer's plan depends only on
its own row, history and occasions, and on which schedule campaigns are due (targeting, which
ranks a whole audience, is the exception). So the simulation cuts the horizon into *stretches* of
runs in which the same schedule campaigns have the same status, plans everyone once at the start
of each stretch, and inside it re-plans a customer only at the runs where its inputs change:

- the run after it was messaged (its history and caps changed);
- when one of its messages leaves a cap's period (``created_at + period``);
- when one of its events enters or leaves an event trigger's ``within``;
- when its growing recency reaches an inactive trigger's ``days`` (found with the planner's own
  float arithmetic).

Those re-plans go to the real planner in *waves*: each wave takes every customer's next change,
whatever run it falls in, and plans them together, each row at its own run's time
(:attr:`~campaigns.planner.PlanInputs.times`). A customer's outcome (in the audience or not, and
why it is left out) holds from one of its plans to the next; the forecast's counts are summed
over those spans. Everyone is planned at every run when a condition or target reads the time
(``recency``, ``days_since``), when a campaign has a ``target``, or when the outbox already holds
messages for a schedule window of the horizon: then the simulation is as slow as the plain one.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Iterator, Set
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import combinations

import numpy as np
import numpy.typing as npt
import pandas as pd

from campaigns.config.rules import (
    Cap,
    EventTrigger,
    InactiveTrigger,
    OnceTrigger,
    ScheduleTrigger,
    parse_duration,
)
from campaigns.config.schema import CampaignConfig, Config
from campaigns.forecast import Forecast, _why_never, run_times, schedule_fires
from campaigns.keys import idempotency_key
from campaigns.planner import (
    ALREADY_PLANNED,
    CAMPAIGN_CAP,
    DISABLED,
    DUE,
    GLOBAL_CAP,
    LEFT_OUT_REASONS,
    NO_TRIGGER,
    NOT_DUE,
    CampaignPlan,
    PlanInputs,
    plan_campaigns,
)
from campaigns.run import Prepared
from campaigns.time_dependence import recency_thresholds
from campaigns.triggers import Window, last_fire

_REASONS = len(LEFT_OUT_REASONS)
_CAPPED = (LEFT_OUT_REASONS.index(CAMPAIGN_CAP), LEFT_OUT_REASONS.index(GLOBAL_CAP))
Positions = npt.NDArray[np.int64]


class _Union(Set[str]):
    """Two sets read as one, without copying either (the simulated keys grow to millions)."""

    def __init__(self, first: Set[str], second: Set[str]) -> None:
        self.first, self.second = first, second

    def __contains__(self, key: object) -> bool:
        return key in self.first or key in self.second

    def __iter__(self) -> Iterator[str]:
        yield from self.first
        yield from (k for k in self.second if k not in self.first)

    def __len__(self) -> int:
        return len(self.first) + sum(1 for k in self.second if k not in self.first)

    def __bool__(self) -> bool:
        return bool(self.first) or bool(self.second)


@dataclass
class _Spans:
    """Who was in a campaign's audience, or left out and why, from which run to which."""

    positions: list[Positions] = field(default_factory=list)
    first: list[npt.NDArray[np.int64]] = field(default_factory=list)
    end: list[npt.NDArray[np.int64]] = field(default_factory=list)
    audience: list[npt.NDArray[np.bool_]] = field(default_factory=list)
    reason: list[npt.NDArray[np.int8]] = field(default_factory=list)

    def add(
        self,
        positions: Positions,
        first: npt.NDArray[np.int64],
        end: int | npt.NDArray[np.int64],
        audience: npt.NDArray[np.bool_],
        reason: npt.NDArray[np.int8],
    ) -> None:
        keep = audience | (reason >= 0)
        self.positions.append(positions[keep])
        self.first.append(first[keep])
        ends = np.broadcast_to(np.asarray(end, np.int64), positions.shape)
        self.end.append(ends[keep].copy())
        self.audience.append(audience[keep])
        self.reason.append(reason[keep])

    def joined(
        self,
    ) -> tuple[
        Positions,
        npt.NDArray[np.int64],
        npt.NDArray[np.int64],
        npt.NDArray[np.bool_],
        npt.NDArray[np.int8],
    ]:
        def cat(parts: list[npt.NDArray], dtype: type) -> npt.NDArray:  # type: ignore[type-arg]
            return np.concatenate(parts) if parts else np.zeros(0, dtype)

        return (
            cat(self.positions, np.int64),
            cat(self.first, np.int64),
            cat(self.end, np.int64),
            cat(self.audience, np.bool_),
            cat(self.reason, np.int8),
        )


@dataclass
class _Campaign:
    """One campaign's current outcome per customer, and the spans of earlier outcomes."""

    name: str
    config: CampaignConfig
    schedule: bool
    audience: npt.NDArray[np.bool_]
    #: The reason each customer is left out, as a code into LEFT_OUT_REASONS (-1: not left out).
    reason: npt.NDArray[np.int8]
    spans: _Spans = field(default_factory=_Spans)

    def close(
        self, positions: Positions, since: npt.NDArray[np.int64], end: int | npt.NDArray[np.int64]
    ) -> None:
        """The outcome of the customers at ``positions`` held from ``since`` until ``end``."""
        self.spans.add(positions, since, end, self.audience[positions], self.reason[positions])

    def replace(self, plan: CampaignPlan, positions: Positions) -> None:
        """The outcome of the customers at ``positions`` is now ``plan``'s (planned over just
        those rows, in that order)."""
        self.audience[positions] = False
        self.audience[positions[plan.audience["position"].to_numpy(np.int64)]] = True
        self.reason[positions] = -1
        rows = plan.left_out_rows
        codes = rows["reason"].cat.codes.to_numpy(np.int8)
        self.reason[positions[rows["position"].to_numpy(np.int64)]] = codes


def _groups(rows: npt.NDArray[np.int64]) -> dict[int, npt.NDArray[np.int64]]:
    """Row numbers by customer position (rows of customers not in the table are dropped)."""
    known = np.flatnonzero(rows >= 0)
    order = known[np.argsort(rows[known], kind="stable")]
    cuts = np.flatnonzero(np.diff(rows[order])) + 1
    return {int(rows[g[0]]): g for g in np.split(order, cuts) if len(g)}


def _schedule_status(c: _Campaign, key: str | None, planned: Set[tuple[str, str]]) -> str:
    """A schedule campaign's status at a run whose window has ``key``, as the planner decides."""
    if not c.config.enabled:
        return DISABLED
    if key is None:
        return NOT_DUE
    if (c.name, key) in planned:
        return ALREADY_PLANNED
    return DUE


class _Simulation:
    """The state of one incremental simulation (see the module docstring)."""

    def __init__(
        self,
        config: Config,
        ready: Prepared,
        base: PlanInputs,
        start: datetime,
        times: list[datetime],
        fires: dict[str, list[datetime]],
        ahead: Callable[[str, str], bool] | None,
    ) -> None:
        self.config, self.ready, self.base, self.start, self.times = (
            config,
            ready,
            base,
            start,
            times,
        )
        self.fires, self.ahead = fires, ahead
        self.stamps: npt.NDArray[np.datetime64] = np.array(times, dtype="datetime64[ns]")
        # The same float the plain simulation adds to recency at each run.
        self.offsets = np.array([(t - start) / timedelta(days=1) for t in times])
        self.days = [f"{t:%Y-%m-%d}" for t in times]
        customers = ready.customers
        self.n = n = len(customers)
        self.ids = customers["customer_id"].astype(str).to_numpy(dtype=object)
        self.index = pd.Index(self.ids, dtype=object)
        self.campaigns = [
            _Campaign(
                name,
                campaign,
                isinstance(campaign.trigger, ScheduleTrigger | OnceTrigger),
                np.zeros(n, bool),
                np.full(n, -1, np.int8),
            )
            for name, campaign in config.campaigns.items()
        ]
        seconds = {int(cap.period.total_seconds()) for cap in self._caps()}
        self.periods = [np.timedelta64(s, "s") for s in sorted(seconds)]
        self.simulated_keys: set[str] = set()
        #: The simulation's messages: customer positions, campaigns, times (one entry per take).
        self.simulated: list[tuple[Positions, str, npt.NDArray[np.datetime64]]] = []
        self.simulated_frames: list[pd.DataFrame] = []
        #: Per campaign: the occasions already asked of the store, and the keys it holds.
        self.asked: dict[str, set[str]] = defaultdict(set)
        self.store_sent: dict[str, set[str]] = defaultdict(set)
        self.sent_to: dict[str, npt.NDArray[np.int64]] = {}
        self.per_day: dict[str, Counter[str]] = {}
        self.ever: Counter[str] = Counter()
        self.since = np.zeros(n, np.int64)
        self._windows()
        history = base.history
        self.history_by_row = _groups(self._rows(history["customer_id"]))
        events = base.events
        self.event_rows = self._rows(events["customer_id"])
        self.events_by_row = _groups(self.event_rows)
        self.pending_positions: list[Positions] = []
        self.pending_runs: list[npt.NDArray[np.int64]] = []
        self._known_changes()

    # -- setting up ------------------------------------------------------------------------------

    def _caps(self) -> Iterator[Cap]:
        yield from self.config.settings.caps
        for campaign in self.config.campaigns.values():
            yield from campaign.caps

    def _rows(self, customer_ids: pd.Series) -> Positions:
        found = self.index.get_indexer(pd.Index(customer_ids.astype(str), dtype=object))
        return np.asarray(found, dtype=np.int64)

    def _windows(self) -> None:
        """Each schedule campaign's window at each run, the statuses, and the stretches."""
        self.windows_at: dict[str, list[Window | None]] = {}
        #: The same windows' keys (formatting a key per run and campaign is not free).
        self.keys_at: dict[str, list[str | None]] = {}
        for c in self.campaigns:
            trigger = c.config.trigger
            if isinstance(trigger, ScheduleTrigger | OnceTrigger):
                fires = self.fires[c.name]
                before = last_fire(trigger, self.start)
                windows = [Window(f) for f in fires]
                keys = [w.key for w in windows]
                found = [bisect_right(fires, t) for t in self.times]
                self.windows_at[c.name] = [windows[i - 1] if i else before for i in found]
                first = before.key if before is not None else None
                self.keys_at[c.name] = [keys[i - 1] if i else first for i in found]
        # A schedule campaign whose horizon windows the outbox already holds messages for (a real
        # run planned ahead) is planned in full at every run where it is due.
        stored = set()
        for name, at_runs in self.keys_at.items():
            keys = sorted({k for k in at_runs if k is not None})
            if not keys:
                continue
            held = (
                self.ahead(name, keys[0])
                if self.ahead is not None
                else bool(self.base.already_sent(name, keys))
            )
            if held:
                stored.add(name)
        self.stored = stored
        # A condition that compares recency with numbers changes only where a customer's
        # recency crosses one (see _known_changes); any other reading of the time, or a target,
        # is planned for everyone at every run.
        everyone = any(
            c.config.target is not None or recency_thresholds(c.config) is None
            for c in self.campaigns
        )
        planned = set(self.base.planned_windows)
        self.planned_at: dict[int, frozenset[tuple[str, str]]] = {}
        self.statuses: list[tuple[str, ...]] = []
        self.starts: list[int] = []
        for k in range(len(self.times)):
            now = tuple(
                _schedule_status(c, self.keys_at[c.name][k], planned)
                for c in self.campaigns
                if c.schedule
            )
            due_stored = any(
                c.name in stored and s == DUE
                for c, s in zip((c for c in self.campaigns if c.schedule), now, strict=True)
            )
            if (
                not k
                or everyone
                or due_stored
                or now != self.statuses[-1]
                or (self.starts and self.starts[-1] == k - 1 and self._stored_due(k - 1))
            ):
                self.starts.append(k)
                self.planned_at[k] = frozenset(planned)
            self.statuses.append(now)
            for c, status in zip((c for c in self.campaigns if c.schedule), now, strict=True):
                key = self.keys_at[c.name][k]
                if status == DUE and key is not None:
                    planned.add((c.name, key))

    def _stored_due(self, k: int) -> bool:
        schedule = [c for c in self.campaigns if c.schedule]
        return any(
            c.name in self.stored and s == DUE
            for c, s in zip(schedule, self.statuses[k], strict=True)
        )

    def _known_changes(self) -> None:
        """Changes known in advance: messages leaving cap periods, events entering and leaving
        trigger windows, customers reaching inactive triggers' days."""
        base = self.base
        history = base.history
        rows = self._rows(history["customer_id"])
        created = pd.to_datetime(history["created_at"]).to_numpy(dtype="datetime64[ns]")
        self._change_at(created, rows)
        for period in self.periods:
            self._change_at(created + period, rows)
        events = base.events
        occurred = pd.to_datetime(events["occurred_at"]).to_numpy(dtype="datetime64[ns]")
        seen_days: set[float] = set()
        recency = self.ready.customers["recency"].to_numpy(dtype=float)
        for c in self.campaigns:
            trigger = c.config.trigger
            if isinstance(trigger, EventTrigger):
                mine = (events["event"] == trigger.event).to_numpy(dtype=bool)
                within = np.timedelta64(int(parse_duration(trigger.within).total_seconds()), "s")
                self._change_at(occurred[mine], self.event_rows[mine])
                self._change_at(occurred[mine] + within, self.event_rows[mine])
            elif isinstance(trigger, InactiveTrigger) and trigger.days not in seen_days:
                seen_days.add(trigger.days)
                self._reaching(trigger.days, recency)
        # Conditions comparing recency with a number: the answer changes where recency reaches
        # the number (>=, <) or passes it (>, <=, ==, !=).
        crossings: set[float] = set()
        for c in self.campaigns:
            crossings.update(recency_thresholds(c.config) or ())
        for number in sorted(crossings):
            for point in (number, float(np.nextafter(number, np.inf))):
                if point not in seen_days:
                    seen_days.add(point)
                    self._reaching(point, recency)

    def _change_at(self, when: npt.NDArray[np.datetime64], rows: Positions) -> None:
        """Customers whose inputs change at ``when``: re-planned at the first run at or after."""
        keep = (rows >= 0) & ~np.isnat(when)
        runs = np.searchsorted(self.stamps, when[keep], side="left").astype(np.int64)
        inside = runs < len(self.times)
        self.pending_positions.append(rows[keep][inside])
        self.pending_runs.append(runs[inside])

    def _reaching(self, days: float, recency: npt.NDArray[np.float64]) -> None:
        """The first run at which each customer's ``recency + offset >= days`` (the planner's
        test, in the same float64 arithmetic)."""
        offsets = self.offsets
        found = np.searchsorted(offsets, days - recency, side="left").astype(np.int64)
        last = len(offsets)
        # The searched value is rounded; step to the exact first run by the planner's test.
        for _ in range(3):
            back = (found > 0) & (recency + offsets[np.maximum(found - 1, 0)] >= days)
            found[back] -= 1
            ahead = (found < last) & ~(recency + offsets[np.minimum(found, last - 1)] >= days)
            found[ahead] += 1
        inside = (found > 0) & (found < last) & ~np.isnan(recency)
        self.pending_positions.append(np.flatnonzero(inside).astype(np.int64))
        self.pending_runs.append(found[inside])

    # -- running ---------------------------------------------------------------------------------

    def already_sent(self, campaign: str, occasions: Collection[str]) -> Set[str]:
        if campaign in self.windows_at and campaign not in self.stored:
            # The store holds no key for any window of the horizon, and the simulation none for
            # a window that is due: a window is due once, and the planner asks only then.
            return frozenset()
        new = set(occasions) - self.asked[campaign]
        if new:
            self.store_sent[campaign].update(self.base.already_sent(campaign, sorted(new)))
            self.asked[campaign].update(new)
        return _Union(self.store_sent[campaign], self.simulated_keys)

    def run(self) -> None:
        ends = [*self.starts[1:], len(self.times)]
        for first, end in zip(self.starts, ends, strict=True):
            self._plan_everyone(first)
            while True:
                wave = self._next_wave(first, end)
                if wave is None:
                    break
                self._plan_wave(*wave, stretch=first)
        everyone = np.arange(self.n, dtype=np.int64)
        for c in self.campaigns:
            c.close(everyone, self.since, len(self.times))

    def _inputs(self, table: pd.DataFrame, k: int, **more: object) -> PlanInputs:
        return PlanInputs(
            customers=table,
            at=self.times[k],
            planned_windows=self.planned_at[k],
            suppressed=self.base.suppressed,
            previous_segments=pd.Series(dtype="int64"),  # segments stay as they are
            already_sent=self.already_sent,
            **more,  # type: ignore[arg-type]
        )

    def _plan_everyone(self, k: int) -> None:
        everyone = np.arange(self.n, dtype=np.int64)
        for c in self.campaigns:
            c.close(everyone, self.since, k)
        self.since[:] = k
        table = self.ready.customers.copy()
        table["recency"] = table["recency"] + self.offsets[k]
        inputs = self._inputs(
            table,
            k,
            events=self.base.events,
            history=pd.concat([self.base.history, *self.simulated_frames], ignore_index=True),
            schedule_windows={name: w[k] for name, w in self.windows_at.items()},
        )
        plans = plan_campaigns(self.config, inputs, self.ready.model.names)
        self._record(plans, everyone, np.full(self.n, k, np.int64))

    def _next_wave(self, first: int, end: int) -> tuple[Positions, npt.NDArray[np.int64]] | None:
        """Each customer's next change inside the stretch ``[first, end)``, or None."""
        positions = np.concatenate(self.pending_positions) if self.pending_positions else None
        if positions is None or not len(positions):
            return None
        runs = np.concatenate(self.pending_runs)
        # Changes at or before the stretch's first run are covered by planning everyone there.
        later = runs > first
        positions, runs = positions[later], runs[later]
        inside = runs < end
        self.pending_positions = [positions[~inside]]
        self.pending_runs = [runs[~inside]]
        positions, runs = positions[inside], runs[inside]
        if not len(positions):
            return None
        order = np.lexsort((runs, positions))
        positions, runs = positions[order], runs[order]
        head = np.r_[True, positions[1:] != positions[:-1]]
        wave_positions, wave_runs = positions[head], runs[head]
        counts = np.diff(np.r_[np.flatnonzero(head), len(positions)])
        rest = runs > np.repeat(wave_runs, counts)
        self.pending_positions.append(positions[rest])
        self.pending_runs.append(runs[rest])
        return wave_positions, wave_runs

    def _history_of(self, positions: Positions) -> pd.DataFrame:
        """The messages of the customers at ``positions``: the store's, then the simulation's."""
        history = self.base.history
        rows = [self.history_by_row[p] for p in positions.tolist() if p in self.history_by_row]
        stored = history.iloc[np.concatenate(rows)] if rows else history.iloc[0:0]
        parts = [stored[["customer_id", "campaign", "created_at"]]]
        for chosen, campaign, when in self.simulated:
            mine = np.isin(chosen, positions)
            if mine.any():
                parts.append(
                    pd.DataFrame(
                        {
                            "customer_id": self.ids[chosen[mine]],
                            "campaign": campaign,
                            "created_at": when[mine],
                        }
                    )
                )
        return pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]

    def _plan_wave(self, positions: Positions, runs: npt.NDArray[np.int64], stretch: int) -> None:
        for c in self.campaigns:
            c.close(positions, self.since[positions], runs)
        self.since[positions] = runs
        table = self.ready.customers.iloc[positions].copy()
        table["recency"] = table["recency"].to_numpy(dtype=float) + self.offsets[runs]
        history = self._history_of(positions)
        rows = [self.events_by_row[p] for p in positions.tolist() if p in self.events_by_row]
        events = self.base.events.iloc[np.concatenate(rows)] if rows else self.base.events.iloc[0:0]
        # Statuses are the stretch's; a due campaign's window differs run by run, so the planner
        # gets one that no key holds, and each message gets its own run's window afterwards.
        windows: dict[str, Window | None] = {}
        schedule = [c for c in self.campaigns if c.schedule]
        for c, status in zip(schedule, self.statuses[stretch], strict=True):
            windows[c.name] = _UNUSED if status == DUE else self.windows_at[c.name][stretch]
        inputs = self._inputs(
            table,
            stretch,
            events=events,
            history=history,
            schedule_windows=windows,
            times=self.stamps[runs],
        )
        plans = plan_campaigns(self.config, inputs, self.ready.model.names)
        self._record(plans, positions, runs)

    def _record(
        self, plans: list[CampaignPlan], positions: Positions, runs: npt.NDArray[np.int64]
    ) -> None:
        """Take the plans of the customers at ``positions`` (each at its run in ``runs``)."""
        messaged: list[tuple[Positions, npt.NDArray[np.int64]]] = []
        for c, plan in zip(self.campaigns, plans, strict=True):
            c.replace(plan, positions)
            if plan.status != DUE or plan.selected.empty:
                continue
            rows = plan.selected["position"].to_numpy(np.int64)
            chosen, at = positions[rows], runs[rows]
            if c.schedule:
                by_run = self.keys_at[c.name]
                occasions = [str(by_run[k]) for k in at.tolist()]
            else:
                occasions = [str(w) for w in plan.selected["window"]]
            self.ever[c.name] += len(chosen)
            chosen_ids = self.ids[chosen]
            self.simulated_keys.update(
                idempotency_key(c.name, str(i), w)
                for i, w in zip(chosen_ids, occasions, strict=True)
            )
            when = self.stamps[at]
            self.simulated.append((chosen, c.name, when))
            self.simulated_frames.append(
                pd.DataFrame({"customer_id": chosen_ids, "campaign": c.name, "created_at": when})
            )
            for k in np.unique(at).tolist():
                these = chosen[at == k]
                day = self.days[k]
                self.per_day.setdefault(day, Counter())[c.name] += len(these)
                if day not in self.sent_to:
                    self.sent_to[day] = np.zeros(self.n, np.int64)
                np.add.at(self.sent_to[day], these, 1)
            messaged.append((chosen, at))
        for chosen, at in messaged:
            # Re-planned at the next run (history grew), and when the message leaves each period.
            self.pending_positions.append(chosen)
            self.pending_runs.append(at + 1)
            for period in self.periods:
                self._change_at(self.stamps[at] + period, chosen)

    # -- the forecast ----------------------------------------------------------------------------

    def forecast(self, result: Forecast) -> Forecast:
        runs = len(self.times)
        result.runs = runs
        for day in dict.fromkeys(self.days):
            result.per_day[day] = self.per_day.get(day, Counter())
        day_starts = [self.days.index(d) for d in dict.fromkeys(self.days)]
        day_bounds = list(zip(day_starts, [*day_starts[1:], runs], strict=True))
        wanted: dict[str, dict[str, npt.NDArray[np.bool_]]] = defaultdict(dict)
        reasons: dict[str, Counter[str]] = defaultdict(Counter)
        schedule = [c.name for c in self.campaigns if c.schedule]
        for c in self.campaigns:
            positions, first, end, audience, reason = c.spans.joined()
            size = _count_over(first[audience], end[audience], runs)
            if c.schedule:
                column = schedule.index(c.name)
                status = np.array([s[column] for s in self.statuses], dtype=object)
            elif not c.config.enabled:
                status = np.full(runs, DISABLED, dtype=object)
            else:
                status = np.where(size > 0, DUE, NO_TRIGGER).astype(object)
            for name, count in zip(*np.unique(status, return_counts=True), strict=True):
                reasons[c.name][str(name)] += int(count)
            length = end - first
            for code, total in enumerate(
                np.bincount(reason[reason >= 0], weights=length[reason >= 0], minlength=_REASONS)
            ):
                if total:
                    reasons[c.name][LEFT_OUT_REASONS[code]] += int(total)
            due = status == DUE
            capped = np.isin(reason, _CAPPED)
            held_back = int((_count_over(first[capped], end[capped], runs) * due).sum())
            if held_back:
                result.cap_collisions[c.name] += held_back
            # Who was in the audience at a run of each day where the campaign was due.
            due_before = np.r_[0, np.cumsum(due)]
            members, joined, left = positions[audience], first[audience], end[audience]
            for (low, high), day in zip(day_bounds, dict.fromkeys(self.days), strict=True):
                if due_before[high] == due_before[low]:
                    continue
                overlap = (joined < high) & (left > low)
                lo = np.maximum(joined[overlap], low)
                hi = np.minimum(left[overlap], high)
                hit = due_before[hi] > due_before[lo]
                mask = wanted[day].setdefault(c.name, np.zeros(self.n, bool))
                mask[members[overlap][hit]] = True
        for day, counts in self.sent_to.items():
            if counts.any():
                values, how_many = np.unique(counts[counts > 0], return_counts=True)
                result.pressure[day] = Counter(
                    {int(v): int(m) for v, m in zip(values, how_many, strict=True)}
                )
        for chosen in wanted.values():
            for a, b in combinations(sorted(chosen), 2):
                shared = int(np.count_nonzero(chosen[a] & chosen[b]))
                if shared:
                    result.overlaps[(a, b)] += shared
        for name, campaign in self.config.campaigns.items():
            if campaign.enabled and self.ever[name] == 0:
                result.never[name] = _why_never(reasons[name])
        return result


def _count_over(
    first: npt.NDArray[np.int64], end: npt.NDArray[np.int64], runs: int
) -> npt.NDArray[np.int64]:
    """How many spans ``[first, end)`` cover each run."""
    starts = np.bincount(first, minlength=runs + 1)
    stops = np.bincount(end, minlength=runs + 1)
    return np.cumsum(starts - stops)[:runs].astype(np.int64)


#: The window a wave gives a due schedule campaign: never a real one, so no key matches it.
_UNUSED = Window(datetime(1, 1, 1))


def simulate_incrementally(
    config: Config,
    ready: Prepared,
    base: PlanInputs,
    start: datetime,
    days: int,
    ahead: Callable[[str, str], bool] | None = None,
) -> Forecast:
    """The forecast of :func:`campaigns.forecast.simulate_plainly`, planning each customer only
    at the runs where its inputs change (see the module docstring)."""
    result = Forecast(start=start, days=days)
    fires = schedule_fires(config, start, days)
    times = run_times(config, start, days, fires)
    if not times:
        return result
    simulation = _Simulation(config, ready, base, start, times, fires, ahead)
    simulation.run()
    return simulation.forecast(result)
