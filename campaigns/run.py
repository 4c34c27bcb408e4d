"""One run, start to finish: data, segments, plan, render, outbox, delivery, summary.

``run_campaigns`` is the function both ``campaign run`` (cron) and the scheduler call. For a given
store state, config and ``at`` it is deterministic, and ``dry_run=True`` computes the same plan and
the same messages without writing any of them.
"""

from __future__ import annotations

import hashlib
import json
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pandas as pd
from sqlalchemy import Engine
from sqlmodel import Session

from campaigns.compose import HELD_OUT, compose
from campaigns.config.schema import Config
from campaigns.data import ensure_data
from campaigns.delivery.drain import DrainResult, drain
from campaigns.experiments import HOLDOUT, campaign_arms, record_campaign_exposures
from campaigns.inputs import gather_inputs
from campaigns.personalization.clv.commands import with_lifetime_value
from campaigns.personalization.for_templates import RunRecommendations
from campaigns.personalization.scoring import with_scores
from campaigns.planner import DUE, NOT_SEGMENTED, CampaignPlan, deferred_until, plan_campaigns
from campaigns.progress import Progress, quiet
from campaigns.run_records import heartbeat, start_run
from campaigns.segments import (
    FittedSegments,
    assign,
    ensure_model,
    record_membership,
    segment_features,
)
from store import outbox
from store.engine import opened_store
from store.frames import ShopData
from store.locks import run_lock
from store.tables import CampaignRun, CampaignWindow
from templates import make_environment


@dataclass(frozen=True)
class SummaryRow:
    """One line of the run summary: a campaign and segment."""

    campaign: str
    segment: str
    audience: int
    messages: int
    status: str
    channel: str
    destination: str


@dataclass
class RunResult:
    """What a run did (or, for a dry run, would do)."""

    at: datetime
    dry_run: bool
    run_id: int | None
    rows: list[SummaryRow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    new_messages: int = 0
    sent: int = 0
    failed: int = 0
    #: Messages that failed transiently and wait in the outbox for a retry.
    retrying: int = 0
    #: Messages withheld at send time: their customer became suppressed after queueing.
    suppressed: int = 0
    loaded: bool = False
    model_version: int = 0
    model_fitted: bool = False
    entered: int = 0
    exited: int = 0


def config_hash(config: Config) -> str:
    """A short fingerprint of the config, stored with each run."""
    payload = json.dumps(config.model_dump(mode="json"), sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


def run_campaigns(
    config: Config,
    at: datetime | None = None,
    dry_run: bool = False,
    only: str | None = None,
    progress: Progress | None = None,
) -> RunResult:
    """Run every due campaign (or only ``only``) at time ``at`` (naive UTC; default now)."""
    report = progress or quiet
    at = at or datetime.now(UTC).replace(tzinfo=None)
    if only is not None:
        config.require_campaign(only)
    # A dry run writes nothing, so it needs no lock; a real one holds it start to finish.
    with (
        opened_store(config.store.url, config.root) as engine,
        nullcontext() if dry_run else run_lock(engine),
    ):
        return _run(engine, config, at, dry_run, only, report)


@dataclass(frozen=True)
class Prepared:
    """A workspace ready to plan at a time: data, features, the model and the customer table.

    ``customers`` has one row per customer, indexed by customer id: traits, features,
    ``segment_id`` and ``segment`` (its name); customers the model does not segment (no usable
    purchase) have :data:`~campaigns.planner.NOT_SEGMENTED`.
    """

    shop: ShopData
    customers: pd.DataFrame
    segment_ids: pd.Series
    model: FittedSegments
    loaded: bool


def prepare(
    engine: Engine, config: Config, at: datetime, persist: bool, report: Progress = quiet
) -> Prepared:
    """Load data (filling an empty store), build features and assign segments at ``at``.

    With ``persist=False`` (dry runs, plans, previews) a newly fitted model is not stored.
    """
    shop, loaded = ensure_data(engine, config, report)
    report("Building features", 0, None)
    features = segment_features(shop, config.segmentation, at)
    report("Segmenting", 0, None)
    model = ensure_model(engine, config.segmentation, features, at, persist=persist)
    segment_ids = assign(model, features, config.segmentation)
    customers = shop.customers.set_index("customer_id", drop=False).rename_axis(None)
    # Traits clustered as features are already customer columns.
    customers = customers.join(features.drop(columns=customers.columns, errors="ignore"))
    customers = customers.assign(segment_id=segment_ids)
    customers["segment"] = customers["segment_id"].map(model.labels)
    # Trained personalization models add their scores (propensity, uplift) as traits.
    customers = with_scores(engine, customers)
    # A trained lifetime-value model adds p_alive, expected_purchases_90d, expected_spend, clv_12m.
    customers = with_lifetime_value(engine, customers, shop.transactions, at)
    return Prepared(shop, customers, segment_ids, model, loaded)


def plan_run(
    engine: Engine, config: Config, ready: Prepared, at: datetime, only: str | None = None
) -> list[CampaignPlan]:
    """The plan of a run at ``at`` over a prepared workspace (nothing is written)."""
    inputs = gather_inputs(engine, config, ready.customers, ready.shop, at)
    return plan_campaigns(config, inputs, ready.model.names, only)


def _run(
    engine: Engine,
    config: Config,
    at: datetime,
    dry_run: bool,
    only: str | None,
    report: Progress,
) -> RunResult:
    result = RunResult(at=at, dry_run=dry_run, run_id=None)
    ready = prepare(engine, config, at, persist=not dry_run, report=report)
    result.loaded = ready.loaded
    model, customers, segment_ids = ready.model, ready.customers, ready.segment_ids
    result.model_version, result.model_fitted = model.version, model.fitted_now

    report("Planning", 0, None)
    plans = plan_run(engine, config, ready, at, only)
    run_id, died = start_run(engine, at, config_hash(config)) if not dry_run else (0, [])
    result.run_id = run_id if not dry_run else None
    if died:
        listed = ", ".join(str(d) for d in died)
        result.notes.append(f"run {listed} died without finishing (marked died)")
    try:
        with nullcontext() if dry_run else heartbeat(engine, run_id):
            if not dry_run:
                result.entered, result.exited = record_membership(
                    engine, run_id, model.version, segment_ids[segment_ids != NOT_SEGMENTED], at
                )
            _compose_and_enqueue(
                engine, config, plans, ready.shop, customers, model, at, run_id, result, report
            )
            if not dry_run:
                report("Delivering", 0, None)
                delivered = drain(
                    engine, config, at, label=f"{at:%Y%m%dT%H%M}-run{run_id}", run_id=run_id
                )
                _note_delivery(result, delivered)
                _finish_run(engine, run_id, result)
    except BaseException as exc:
        if not dry_run:
            _fail_run(engine, run_id, exc)
        raise
    return result


def _note_delivery(result: RunResult, delivered: DrainResult) -> None:
    """Fold a drain's counts into the run's result and notes."""
    result.sent = sum(delivered.sent.values())
    result.failed = sum(delivered.failed.values()) + sum(delivered.bounced.values())
    result.retrying = sum(delivered.retrying.values())
    result.suppressed = sum(delivered.suppressed.values())
    for campaign, count in sorted(delivered.suppressed.items()):
        result.notes.append(
            f"{campaign}: {count:,} not sent (the customer was suppressed after queueing)"
        )
    earlier = sum(delivered.from_earlier_runs.values())
    if earlier:
        runs = ", ".join(str(r) for r in sorted(delivered.from_earlier_runs))
        result.notes.append(f"delivered {earlier:,} messages queued by earlier runs ({runs})")
    if delivered.exports_finished:
        result.notes.append(
            f"finished {delivered.exports_finished:,} exported messages that a stopped run "
            "had written but not recorded"
        )
    if delivered.paused:
        result.notes.append(
            "delivery is paused (campaign resume): queued messages wait in the outbox"
        )
    result.rows = [
        _with_destination(row, delivered.destinations.get(row.campaign)) for row in result.rows
    ]


def _compose_and_enqueue(
    engine: Engine,
    config: Config,
    plans: list[CampaignPlan],
    shop: ShopData,
    customers: pd.DataFrame,
    model: FittedSegments,
    at: datetime,
    run_id: int,
    result: RunResult,
    report: Progress,
) -> None:
    env = make_environment(config.path(config.templates))
    segments = model.for_templates()
    due = [p for p in plans if p.status == DUE]
    total = sum(len(p.selected) for p in due)
    quiet = config.settings.quiet_hours
    deferred = (
        deferred_until(customers["timezone"], at, quiet.start, quiet.end)
        if quiet is not None
        else None
    )
    report("Rendering", 0, total)
    rendered: dict[str, pd.DataFrame] = {}
    # Fitted lazily, once, and only if a due campaign asks for recommendations.
    recommendations = RunRecommendations(shop, customers["segment_id"], at)
    # Experiments: each selected customer's arm (a promoted variant for everyone, once promoted).
    arms = {p.name: campaign_arms(engine, p.name, p.config, p.selected["customer_id"]) for p in due}
    for plan in due:
        rendered[plan.name] = compose(
            plan,
            customers,
            segments,
            env,
            at,
            run_id,
            config.settings.unsubscribe_base_url,
            outbox.existing_keys(engine, plan.name, plan.selected["window"].unique()),
            deferred=deferred,
            on_progress=lambda n: report("Rendering", n, total),
            arms=arms[plan.name],
            recommendations=recommendations,
        )
    report("Writing outbox", 0, None)
    for plan in due:
        messages = rendered[plan.name]
        # Held-out occasions go to the outbox too (never delivered) but are not messages.
        held_rows = int((messages["status"] == HELD_OUT).sum())
        plan_arms = arms[plan.name]
        if plan_arms is not None:
            # Every selected customer is exposed, the holdout included (it gets no message).
            # Before the outbox: a run killed in between re-plans the window, and only a
            # customer's first exposure is kept.
            if not result.dry_run:
                record_campaign_exposures(engine, plan_arms, plan.selected["customer_id"], at)
            held = int((plan_arms.arms == HOLDOUT).sum())
            if held:
                result.notes.append(f"{plan.name}: {held:,} held out (experiment)")
        if result.dry_run:
            new = len(messages) - held_rows
        else:
            new = outbox.enqueue(engine, messages) - held_rows
            if plan.window is not None:  # a campaign-wide window (schedule, once)
                _record_window(engine, plan.name, plan.window, run_id, new)
        result.new_messages += new
        waiting = int(messages["next_attempt_at"].notna().sum())
        if waiting:
            result.notes.append(f"{plan.name}: {waiting:,} deferred until quiet hours end")
    status = "dry run" if result.dry_run else "queued"
    for plan in plans:
        if plan.name in rendered:
            messages = rendered[plan.name]
            counts = _sizes(messages.loc[messages["status"] != HELD_OUT, "segment_id"])
            result.rows.extend(_rows(plan, model.labels, counts, status, plan.config.channel))
            result.notes.extend(
                f"{plan.name}: {count:,} left out ({reason})"
                for reason, count in sorted(plan.left_out.items())
                if count
            )
        else:
            window = f" (window {plan.window})" if plan.window is not None else ""
            result.notes.append(f"{plan.name}: {plan.status}{window}")
            result.rows.extend(_rows(plan, model.labels, None, plan.status, plan.config.channel))


def _rows(
    plan: CampaignPlan,
    names: dict[int, str],
    counts: dict[int, int] | None,
    status: str,
    channel: str,
) -> list[SummaryRow]:
    sizes = _sizes(plan.audience["segment_id"])
    rows = []
    for sid, size in sizes.items():
        messages = (counts or {}).get(sid, 0)
        # A due campaign whose customers in this segment all went elsewhere says so.
        shown = status if messages or counts is None else "left out"
        rows.append(
            SummaryRow(
                plan.name, f"{sid} {names.get(sid, '?')}", size, messages, shown, channel, ""
            )
        )
    return rows or [SummaryRow(plan.name, "(no customers)", 0, 0, status, channel, "")]


def _sizes(segment_ids: pd.Series) -> dict[int, int]:
    counts = segment_ids.astype(int).value_counts().sort_index()
    return dict(zip(counts.index.astype(int).tolist(), counts.astype(int).tolist(), strict=True))


def _with_destination(row: SummaryRow, destinations: set[str] | None) -> SummaryRow:
    if not destinations or row.messages == 0:
        return row
    return SummaryRow(
        row.campaign,
        row.segment,
        row.audience,
        row.messages,
        "sent",
        row.channel,
        ", ".join(sorted(destinations)),
    )


def _finish_run(engine: Engine, run_id: int, result: RunResult) -> None:
    with Session(engine) as session:
        row = session.get(CampaignRun, run_id)
        assert row is not None
        row.status = "succeeded"
        row.finished_at = datetime.now(UTC).replace(tzinfo=None)
        row.summary = [r.__dict__ for r in result.rows]
        session.add(row)
        session.commit()


def _fail_run(engine: Engine, run_id: int, exc: BaseException) -> None:
    with Session(engine) as session:
        row = session.get(CampaignRun, run_id)
        if row is None:
            return
        row.status = "failed"
        row.finished_at = datetime.now(UTC).replace(tzinfo=None)
        row.error = f"{type(exc).__name__}: {exc}"
        session.add(row)
        session.commit()


def _record_window(engine: Engine, campaign: str, window: str, run_id: int, planned: int) -> None:
    with Session(engine) as session:
        session.add(
            CampaignWindow(campaign=campaign, window=window, run_id=run_id, planned=planned)
        )
        session.commit()
