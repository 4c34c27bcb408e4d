"""The summary of a run (or of a dry run or a plan): per campaign and segment, who the campaign
matched and where each of them ended, with the names of :mod:`campaigns.counts`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pandas as pd

from campaigns.compose import HELD_OUT, RENDER_FAILED
from campaigns.counts import Counts, total
from campaigns.planner import ALREADY_SENT, DUE, CampaignPlan

if TYPE_CHECKING:
    from campaigns.config.schema import Config
    from campaigns.journeys.runner import JourneyRun

#: The status of a journey's rows in a run summary.
JOURNEY = "journey"


@dataclass(frozen=True)
class SummaryRow:
    """One line of the run summary: a campaign and a segment, and its counts.

    A campaign that did not fire (not due, its window already planned, disabled) has one row
    with no segment and zero counts; its ``status`` says why.
    """

    campaign: str
    #: "1 VIP": the segment's id and name ("" for a campaign that did not fire).
    segment: str
    segment_id: int | None
    #: The campaign's status in this run: "due", "not due yet", "window already planned"...
    status: str
    channel: str
    #: Where the channel delivered this run's messages (files, a URL); "" when nothing went.
    destination: str
    counts: Counts

    def to_json(self) -> dict[str, Any]:
        """The row with snake_case keys (see :class:`campaigns.counts.Counts`)."""
        return {
            "campaign": self.campaign,
            "segment": self.segment,
            "segment_id": self.segment_id,
            "status": self.status,
            "channel": self.channel,
            "destination": self.destination,
            **self.counts.to_json(),
        }


@dataclass
class RunResult:
    """What a run did (or, for a dry run, would do).

    For a real run the message counts are read back from the outbox after delivery: ``sent``
    counts only what the channel confirmed. A dry run's ``deferred`` and ``queued`` are what
    the run would defer and deliver.
    """

    at: datetime
    dry_run: bool
    run_id: int | None
    rows: list[SummaryRow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    loaded: bool = False
    model_version: int = 0
    model_fitted: bool = False
    entered: int = 0
    exited: int = 0
    #: Delivery is paused (``campaign pause``): queued messages wait in the outbox.
    paused: bool = False
    #: Messages queued by earlier runs (deferred, retried) that this run's delivery sent.
    sent_from_earlier_runs: int = 0
    #: A dry run's messages per campaign, as the run would write them to the outbox (the
    #: holdout's rows with status ``held_out``); empty for a real run (see the outbox).
    messages: dict[str, pd.DataFrame] = field(default_factory=dict)
    #: Why the run had nothing to plan, found before it read any data (``campaigns/idle.py``);
    #: None for a run that planned.
    nothing_due: str | None = None
    #: What the run did in each journey (entries, moves, exits); its messages are in ``rows``.
    journeys: list[JourneyRun] = field(default_factory=list)

    @property
    def totals(self) -> Counts:
        """The counts of every row added up."""
        return total(row.counts for row in self.rows)

    @property
    def new_messages(self) -> int:
        """Messages this run planned (held-out customers are not messages)."""
        return self.totals.planned

    def to_json(self) -> dict[str, Any]:
        """The result as ``campaign run --format json`` prints it."""
        return {
            "run_id": self.run_id,
            "at": self.at.isoformat(timespec="seconds"),
            "dry_run": self.dry_run,
            "data_loaded": self.loaded,
            "model_version": self.model_version,
            "model_fitted": self.model_fitted,
            "segment_entered": self.entered,
            "segment_exited": self.exited,
            "delivery_paused": self.paused,
            "sent_from_earlier_runs": self.sent_from_earlier_runs,
            "nothing_due": self.nothing_due,
            "totals": self.totals.to_json(),
            "rows": [row.to_json() for row in self.rows],
            "journeys": [j.to_json() for j in self.journeys],
            "notes": list(self.notes),
        }


def would_be(rendered: dict[str, pd.DataFrame]) -> dict[tuple[str, int], Counts]:
    """A dry run's counts: what the run would plan, hold out, defer and deliver."""
    counts: dict[tuple[str, int], Counts] = {}
    for campaign, messages in rendered.items():
        for segment_id, group in messages.groupby("segment_id"):
            held = int((group["status"] == HELD_OUT).sum())
            failed = int((group["status"] == RENDER_FAILED).sum())
            planned = len(group) - held
            deferred = int(group["next_attempt_at"].notna().sum())
            made = Counts(
                planned=planned,
                held_out=held,
                deferred=deferred,
                render_failed=failed,
                queued=planned - deferred - failed,
            )
            if deferred:
                times = pd.to_datetime(group["next_attempt_at"].dropna())
                made.defer(times.min().to_pydatetime(), times.max().to_pydatetime())
            counts[(campaign, int(str(segment_id)))] = made
    return counts


def summary_rows(
    plans: list[CampaignPlan],
    rendered: dict[str, pd.DataFrame],
    fates: dict[tuple[str, int], Counts],
    names: dict[int, str],
    destinations: dict[str, set[str]],
) -> list[SummaryRow]:
    """The summary's rows: per due campaign and segment, who was matched and where each ended.

    ``audience`` (from the plan) = planned + held_out + left out; the fates come from
    ``fates`` (the outbox after delivery, or a dry run's estimate).
    """
    rows: list[SummaryRow] = []
    for plan in plans:
        channel = plan.config.channel
        if plan.status != DUE:
            rows.append(SummaryRow(plan.name, "", None, plan.status, channel, "", Counts()))
            continue
        selected = plan.selected["segment_id"].astype(int).value_counts()
        left: dict[int, dict[str, int]] = {}
        grouped = plan.left_out_rows.groupby(["segment_id", "reason"], observed=True).size()
        for row in grouped.reset_index(name="n").to_dict("records"):
            left.setdefault(int(str(row["segment_id"])), {})[str(row["reason"])] = int(
                str(row["n"])
            )
        composed = rendered.get(plan.name)
        made = (
            composed["segment_id"].astype(int).value_counts()
            if composed is not None
            else pd.Series(dtype=int)
        )
        segment_ids = sorted(
            {*selected.index.astype(int), *plan.left_out_rows["segment_id"].astype(int)}
        )
        where = ", ".join(sorted(destinations.get(plan.name, set())))
        for sid in segment_ids:
            counts = Counts()
            counts.add(fates.get((plan.name, sid), Counts()))
            counts.left_out = dict(left.get(sid, {}))
            # Selected customers whose message the outbox already held (a run killed after
            # writing it) were not composed again.
            skipped = int(selected.get(sid, 0)) - int(made.get(sid, 0))
            if skipped:
                counts.left_out[ALREADY_SENT] = counts.left_out.get(ALREADY_SENT, 0) + skipped
            counts.audience = int(selected.get(sid, 0)) + int(
                (plan.left_out_rows["segment_id"] == sid).sum()
            )
            label = f"{sid} {names.get(sid, '?')}"
            shown = where if counts.sent else ""
            rows.append(SummaryRow(plan.name, label, sid, DUE, channel, shown, counts))
        if not segment_ids:
            rows.append(SummaryRow(plan.name, "", None, DUE, channel, "", Counts()))
    return rows


def journey_rows(
    config: Config,
    fates: dict[tuple[str, int], Counts],
    names: dict[int, str],
    destinations: dict[str, set[str]],
) -> list[SummaryRow]:
    """Per journey and segment, the messages its send steps planned in this run (their audience
    is the messages planned: a journey's entries are counted in the journey lines)."""
    rows = []
    for name, journey in config.journeys.items():
        where = ", ".join(sorted(destinations.get(name, set())))
        for (campaign, sid), counts in sorted(fates.items()):
            if campaign != name:
                continue
            shown = Counts()
            shown.add(counts)
            shown.audience = shown.planned + shown.held_out
            label = f"{sid} {names.get(sid, '?')}"
            rows.append(
                SummaryRow(
                    name, label, sid, JOURNEY, journey.channel, where if shown.sent else "", shown
                )
            )
    return rows


def notes(plans: list[CampaignPlan], rows: list[SummaryRow]) -> list[str]:
    """Per campaign: why it did not fire, or who was held out, deferred and left out."""
    notes = []
    for plan in plans:
        if plan.status != DUE:
            window = f" (window {plan.window})" if plan.window is not None else ""
            notes.append(f"{plan.name}: {plan.status}{window}")
            continue
        counts = total(r.counts for r in rows if r.campaign == plan.name)
        if counts.held_out:
            notes.append(f"{plan.name}: {counts.held_out:,} held out (experiment)")
        if counts.deferred:
            notes.append(f"{plan.name}: {counts.deferred:,} deferred {_span(counts)}")
        if counts.render_failed:
            notes.append(
                f"{plan.name}: {counts.render_failed:,} failed to render (stored as "
                "render_failed with the error; see campaign status)"
            )
        notes.extend(
            f"{plan.name}: {n:,} left out ({reason})"
            for reason, n in sorted(counts.left_out.items())
            if n
        )
        notes.extend(
            f"{plan.name}: where {plan.config.where!r}: {problem}"
            for problem in plan.condition_problems
        )
    return notes


def _span(counts: Counts) -> str:
    """ "until quiet hours end, 2026-11-24 07:00 to 08:00 UTC"."""
    first, last = counts.deferred_from, counts.deferred_until
    if first is None or last is None:
        return "until quiet hours end"
    if first == last:
        return f"until quiet hours end, {first:%Y-%m-%d %H:%M} UTC"
    end = f"{last:%H:%M}" if first.date() == last.date() else f"{last:%Y-%m-%d %H:%M}"
    return f"until quiet hours end, {first:%Y-%m-%d %H:%M} to {end} UTC"
