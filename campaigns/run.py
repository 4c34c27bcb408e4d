"""One run, start to finish: data, segments, plan, render, outbox, delivery, summary.

``run_campaigns`` is the function both ``campaign run`` (cron) and the scheduler call. For a given
store state, config and ``at`` it is deterministic, and ``dry_run=True`` computes the same plan and
the same messages without writing any of them.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import pandas as pd
from sqlalchemy import Engine
from sqlmodel import Session

from campaigns.compose import HELD_OUT, RunRenderBudget, compose_chunks
from campaigns.config.schema import Config
from campaigns.counts import Counts, from_outbox
from campaigns.data import ensure_data
from campaigns.delivery.drain import DrainResult
from campaigns.delivery.parallel import drain_with_workers
from campaigns.engagement.links import Tracker
from campaigns.engagement.tokens import load_keys
from campaigns.errors import CampaignError
from campaigns.experiments import CampaignArms, campaign_arms, record_campaign_exposures
from campaigns.idle import Idle, Watermark, marks, nothing_due, quiet_until
from campaigns.inputs import gather_inputs
from campaigns.journeys.edits import journey_edits, refuse_stranding
from campaigns.journeys.runner import advance_journeys, entry_plans, last_purchases
from campaigns.personalization.clv.commands import with_lifetime_value
from campaigns.personalization.for_templates import RunRecommendations
from campaigns.personalization.scoring import with_scores
from campaigns.planner import DUE, NOT_SEGMENTED, CampaignPlan, deferred_until, plan_campaigns
from campaigns.progress import Progress, quiet
from campaigns.rendering import Parallel
from campaigns.run_records import heartbeat, held_alive, start_run
from campaigns.segments import (
    FittedSegments,
    assign,
    ensure_model,
    record_membership,
    stored_features,
)
from campaigns.summary import (
    RunResult,
    SummaryRow,
    journey_rows,
    notes,
    summary_rows,
    would_be,
)
from campaigns.validate import validate_templates
from store import outbox
from store.engine import opened_store
from store.frames import ShopData
from store.locks import run_lock
from store.readonly import Reader, message_counts
from store.tables import CampaignRun, CampaignWindow
from templates import make_environment


def config_hash(config: Config) -> str:
    """A short fingerprint of the config, stored with each run."""
    payload = json.dumps(config.model_dump(mode="json", exclude={"file"}), sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


def run_campaigns(
    config: Config,
    at: datetime | None = None,
    dry_run: bool = False,
    only: str | None = None,
    progress: Progress | None = None,
    workers: int = 1,
) -> RunResult:
    """Run every due campaign (or only ``only``) at time ``at`` (naive UTC; default now).

    ``workers`` > 1 renders with that many processes (instead of ``render_processes``) and
    delivers with that many (:mod:`campaigns.delivery.parallel`).
    """
    report = progress or quiet
    at = at or datetime.now(UTC).replace(tzinfo=None)
    if only is not None:
        config.require_campaign(only)
    # Validate before working: a template mistake stops the run before it loads data, fits a
    # model or records a run.
    validate_templates(config, only)
    # So is a missing signing secret (made here on first use when the config says
    # create_secret): every message of a workspace with [tracking] carries signed URLs.
    if config.tracking is not None:
        load_keys(config.tracking, config.root)
    # A dry run writes nothing, so it needs no lock; a real one holds it start to finish.
    with (
        opened_store(config.store.url, config.root) as engine,
        nullcontext() if dry_run else run_lock(engine),
    ):
        return _run(engine, config, at, dry_run, only, report, workers)


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
    #: The earliest stored transaction line dated after the time prepared for (None: none is).
    lines_after: datetime | None = None
    #: Each customer's last purchase from the store's aggregates (None: read from the lines).
    last_purchase: pd.Series | None = None


def prepare(
    engine: Engine, config: Config, at: datetime, persist: bool, report: Progress = quiet
) -> Prepared:
    """Load data (filling an empty store), build features and assign segments at ``at``.

    With ``persist=False`` (dry runs, plans, previews) a newly fitted model is not stored.
    """
    shop, loaded = ensure_data(engine, config, at, report, lazy=True)
    report("Building features", 0, None)
    # From the store's aggregates, folding in the lines that arrived since the last run; the
    # transaction log is read only for a run at a time before some stored line.
    computed = stored_features(engine, shop, config.segmentation, at, loaded)
    features = computed.table
    lines_after = None if computed.from_store else _first_line_after(shop.transactions, at)
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
    customers = with_lifetime_value(engine, customers, shop, at)
    return Prepared(
        shop, customers, segment_ids, model, loaded, lines_after, computed.last_purchase
    )


def _first_line_after(transactions: pd.DataFrame, at: datetime) -> datetime | None:
    later = transactions.loc[pd.to_datetime(transactions["invoiced_at"]) > at, "invoiced_at"]
    return pd.Timestamp(later.min()).to_pydatetime() if len(later) else None


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
    workers: int = 1,
) -> RunResult:
    fingerprint = config_hash(config)
    if workers > 1:  # after the fingerprint: how many processes work is not a change of config
        settings = config.settings.model_copy(update={"render_processes": workers})
        config = config.model_copy(update={"settings": settings})
    if only is None and any(j.enabled for j in config.journeys.values()):
        # An edit of a live journey that would strand customers refuses the run before it
        # does anything (campaign plan shows what an edit does).
        refuse_stranding(journey_edits(engine, config, at))
    # Before reading any data: the last run's watermark may tell that nothing can be due.
    idle = nothing_due(engine, config, at, fingerprint)
    if idle is not None:
        return _idle_run(engine, config, at, dry_run, idle, report, workers)
    result = RunResult(at=at, dry_run=dry_run, run_id=None)
    ready = prepare(engine, config, at, persist=not dry_run, report=report)
    result.loaded = ready.loaded
    model, segment_ids = ready.model, ready.segment_ids
    result.model_version, result.model_fitted = model.version, model.fitted_now

    report("Planning", 0, None)
    inputs = gather_inputs(engine, config, ready.customers, ready.shop, at)
    plans = plan_campaigns(config, inputs, ready.model.names, only)
    # What this run planned from (marks read after a first load or a refit), for the next run. A
    # run of one campaign tells nothing about the others.
    watermark = (
        Watermark(
            marks(engine, config),
            fingerprint,
            quiet_until(
                config,
                inputs,
                # A journey's entry is a per-customer trigger as a campaign's is.
                [*plans, *entry_plans(config)],
                set(ready.shop.customers.columns),
                ready.lines_after,
            ),
        )
        if only is None and not dry_run
        else None
    )
    run_id, died = start_run(engine, at, fingerprint) if not dry_run else (0, [])
    result.run_id = run_id if not dry_run else None
    try:
        with nullcontext() if dry_run else heartbeat(engine, run_id):
            if not dry_run:
                result.entered, result.exited = record_membership(
                    engine, run_id, model.version, segment_ids[segment_ids != NOT_SEGMENTED], at
                )
            composed = (
                compose_plans(engine, config, plans, ready, at, run_id, report)
                if dry_run
                else _compose_into_outbox(engine, config, plans, ready, at, run_id, report)
            )
            rendered = composed.messages
            if not dry_run:
                # Journeys read the purchase history (their exits): the log is read only
                # when some journey is enabled.
                if only is None and any(j.enabled for j in config.journeys.values()):
                    result.journeys = advance_journeys(
                        engine,
                        config,
                        ready.customers,
                        (
                            ready.last_purchase
                            if ready.last_purchase is not None
                            else last_purchases(ready.shop.transactions, at)
                        ),
                        ready.model.for_templates(),
                        inputs,
                        ready.model.names,
                        at,
                        run_id,
                        report,
                    )
                report("Delivering", 0, None)
                label = f"{at:%Y%m%dT%H%M}-run{run_id}"
                delivered = drain_with_workers(engine, config, at, label, workers)
                _note_delivery(result, delivered, run_id, died)
                fates = _outbox_counts(engine, run_id, at)
                destinations = delivered.destinations
            else:
                fates = would_be(rendered)
                destinations = {}
                result.messages = rendered
            result.rows = summary_rows(plans, rendered, fates, model.labels, destinations)
            result.rows += journey_rows(config, fates, model.labels, destinations)
            result.notes[:0] = notes(plans, result.rows)
            if dry_run and config.journeys and only is None:
                result.notes.append(
                    "journeys are not advanced by a dry run (campaign plan shows who is due)"
                )
            result.notes += [j.sentence() for j in result.journeys]
            if not dry_run:
                _finish_run(engine, run_id, result, watermark)
    except BaseException as exc:
        if not dry_run:
            _fail_run(engine, run_id, exc)
        raise
    return result


def _idle_run(
    engine: Engine,
    config: Config,
    at: datetime,
    dry_run: bool,
    idle: Idle,
    report: Progress,
    workers: int = 1,
) -> RunResult:
    """A run with nothing due: no data read, nothing planned; delivery still drains what the
    outbox holds (deferred messages whose time came, retries). Its watermark is the last one."""
    result = RunResult(at=at, dry_run=dry_run, run_id=None, nothing_due=idle.sentence())
    result.model_version = int(idle.watermark.marks.get("segment_model") or 0)
    for name, (status, window) in idle.statuses.items():
        channel = config.campaigns[name].channel
        result.rows.append(SummaryRow(name, "", None, status, channel, "", Counts()))
        result.notes.append(f"{name}: {status}" + (f" (window {window})" if window else ""))
    result.notes += [f"journey {name}: no step due" for name in config.journeys]
    if dry_run:
        return result
    run_id, died = start_run(engine, at, idle.watermark.config)
    result.run_id = run_id
    try:
        with heartbeat(engine, run_id):
            report("Delivering", 0, None)
            label = f"{at:%Y%m%dT%H%M}-run{run_id}"
            delivered = drain_with_workers(engine, config, at, label, workers)
            _note_delivery(result, delivered, run_id, died)
            _finish_run(engine, run_id, result, idle.watermark)
    except BaseException as exc:
        _fail_run(engine, run_id, exc)
        raise
    return result


def _note_delivery(result: RunResult, delivered: DrainResult, run_id: int, died: list[int]) -> None:
    """What the run's notes say about delivery beyond the per-campaign counts."""
    result.paused = delivered.paused
    result.sent_from_earlier_runs = sum(
        n for run, n in delivered.sent_by_run.items() if run != run_id
    )
    if died:
        listed = ", ".join(str(d) for d in died)
        result.notes.append(f"run {listed} died without finishing (marked died)")
    if delivered.exports_finished:
        result.notes.append(
            f"finished {delivered.exports_finished:,} exported messages that a stopped run "
            "had written but not recorded"
        )
    if delivered.paused:
        result.notes.append(
            "delivery is paused (campaign resume): queued messages wait in the outbox"
        )


@dataclass
class Composed:
    """The rendered messages of each due campaign (outbox rows, the holdout's with status
    ``held_out``) and each one's experiment arms (None without an experiment)."""

    messages: dict[str, pd.DataFrame] = field(default_factory=dict)
    arms: dict[str, CampaignArms | None] = field(default_factory=dict)


def compose_plans(
    engine: Engine,
    config: Config,
    plans: list[CampaignPlan],
    ready: Prepared,
    at: datetime,
    run_id: int,
    report: Progress = quiet,
    customer_ids: dict[str, list[str]] | None = None,
    arms: dict[str, CampaignArms | None] | None = None,
    sink: Callable[[str, pd.DataFrame], None] | None = None,
) -> Composed:
    """Render the messages of every due plan: the outbox rows a run at ``at`` would write.

    ``plan``, ``preview``, the dry run and the run all render through here. ``customer_ids``
    limits a campaign's rendering to some of its selected customers (a preview). ``arms``: each
    campaign's experiment arms when the caller has them already. With ``sink``, each chunk of
    rendered rows goes to ``sink(campaign, rows)`` as it is made, and ``messages`` keeps only
    their ``segment_id`` and ``status`` (memory follows ``render_chunk_size``, not the audience).
    """
    customers, model, shop = ready.customers, ready.model, ready.shop
    env = make_environment(config.path(config.templates), config.settings.limits.render_limits())
    segments = model.for_templates()
    due = [p for p in plans if p.status == DUE]
    if customer_ids is not None:
        due = [_only(p, customer_ids.get(p.name, [])) for p in due if p.name in customer_ids]
    total_selected = sum(len(p.selected) for p in due)
    quiet_hours = config.settings.quiet_hours
    deferred = (
        deferred_until(customers["timezone"], at, quiet_hours.start, quiet_hours.end)
        if quiet_hours is not None
        else None
    )
    report("Rendering", 0, total_selected)
    limits = config.settings.limits
    budget = RunRenderBudget(limits.run_render_seconds, limits.max_render_failure_share)
    parallel = Parallel(config.settings.render_processes, config.settings.render_chunk_size)
    composed = Composed()
    # Signed unsubscribe links and tracked links need the secret: a missing one stops the run
    # before anything is rendered.
    tracker = Tracker.from_config(config) if due else None
    # Fitted lazily, once, and only if a due campaign asks for recommendations.
    recommendations = RunRecommendations(shop, customers["segment_id"], at)
    for plan in due:
        # Experiments: each selected customer's arm (a promoted variant for everyone, once
        # promoted). The holdout's occasions come back with status held_out.
        arm = (
            arms[plan.name]
            if arms is not None
            else campaign_arms(engine, plan.name, plan.config, plan.selected["customer_id"])
        )
        composed.arms[plan.name] = arm
        chunks = compose_chunks(
            plan,
            customers,
            segments,
            env,
            at,
            run_id,
            config.settings.unsubscribe_base_url,
            outbox.existing_keys(engine, plan.name, plan.selected["window"].unique()),
            deferred=deferred,
            on_progress=lambda n: report("Rendering", n, total_selected),
            arms=arm,
            recommendations=recommendations,
            budget=budget,
            tracker=tracker,
            parallel=parallel,
        )
        if sink is None:
            made = list(chunks)
            composed.messages[plan.name] = (
                pd.concat(made, ignore_index=True) if len(made) > 1 else made[0]
            )
            continue
        kept = []
        for chunk in chunks:
            sink(plan.name, chunk)
            kept.append(chunk[["segment_id", "status"]])
        composed.messages[plan.name] = pd.concat(kept, ignore_index=True)
    return composed


def _only(plan: CampaignPlan, ids: list[str]) -> CampaignPlan:
    chosen = plan.selected[plan.selected["customer_id"].astype(str).isin(ids)]
    return CampaignPlan(
        plan.name, plan.config, plan.status, plan.window, plan.audience, chosen, plan.left_out
    )


def _compose_into_outbox(
    engine: Engine,
    config: Config,
    plans: list[CampaignPlan],
    ready: Prepared,
    at: datetime,
    run_id: int,
    report: Progress,
) -> Composed:
    """Render every due plan and write its messages to the outbox a chunk at a time, all in one
    transaction: a run that stops (a render budget, a crash) queues nothing of them.

    Exposures are recorded first (every selected customer is exposed, the holdout included),
    before the outbox: a run killed in between re-plans the window, and only a customer's first
    exposure is kept.
    """
    due = [p for p in plans if p.status == DUE]
    arms = {p.name: campaign_arms(engine, p.name, p.config, p.selected["customer_id"]) for p in due}
    for plan in due:
        arm = arms[plan.name]
        if arm is not None:
            record_campaign_exposures(engine, arm, plan.selected["customer_id"], at)
    added: Counter[str] = Counter()
    held: Counter[str] = Counter()
    # SQLite has one writer: while the run's transaction is open, its heartbeat cannot write.
    # Rendering is bounded by run_render_seconds, so the run stays alive that long (and ten
    # minutes more for the writes) without beats.
    seconds = config.settings.limits.run_render_seconds + 600
    with (
        held_alive(engine, run_id, seconds) if engine.dialect.name == "sqlite" else nullcontext(),
        outbox.writing(engine) as writer,
    ):

        def write(campaign: str, rows: pd.DataFrame) -> None:
            added[campaign] += writer.write(rows)
            held[campaign] += int((rows["status"] == HELD_OUT).sum())

        composed = compose_plans(
            engine, config, plans, ready, at, run_id, report, arms=arms, sink=write
        )
        report("Writing outbox", 0, None)
    for plan in due:
        if plan.window is not None:  # a campaign-wide window (schedule, once)
            _record_window(
                engine, plan.name, plan.window, run_id, added[plan.name] - held[plan.name]
            )
    return composed


def _outbox_counts(engine: Engine, run_id: int, at: datetime) -> dict[tuple[str, int], Counts]:
    """This run's messages by campaign and segment, as the outbox holds them after delivery.

    ``at`` is the run's time: a message queued for after it is deferred.
    """
    raw = engine.raw_connection()
    try:
        rows = message_counts(Reader(raw, engine.dialect.name), at, [run_id])
    finally:
        raw.close()
    by_key: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for row in rows:
        by_key.setdefault((str(row["campaign"]), int(row["segment_id"])), []).append(row)
    return {key: from_outbox(group) for key, group in by_key.items()}


def _finish_run(
    engine: Engine, run_id: int, result: RunResult, watermark: Watermark | None
) -> None:
    with Session(engine) as session:
        row = session.get(CampaignRun, run_id)
        assert row is not None
        row.status = "succeeded"
        row.finished_at = datetime.now(UTC).replace(tzinfo=None)
        row.summary = [r.to_json() for r in result.rows]
        if watermark is not None and watermark.run is None:
            watermark = replace(watermark, run=run_id)
        row.watermark = watermark.to_json() if watermark is not None else None
        session.add(row)
        session.commit()


def _fail_run(engine: Engine, run_id: int, exc: BaseException) -> None:
    with Session(engine) as session:
        row = session.get(CampaignRun, run_id)
        if row is None:
            return
        row.status = "failed"
        row.finished_at = datetime.now(UTC).replace(tzinfo=None)
        row.error = failure_sentence(exc)
        session.add(row)
        session.commit()


def failure_sentence(exc: BaseException) -> str:
    """Why a run failed, as ``campaign status`` shows it: the message of an error the user can
    fix, or the name of an unexpected one."""
    if isinstance(exc, CampaignError):
        return str(exc)
    if isinstance(exc, KeyboardInterrupt):
        return "stopped by Ctrl-C or SIGTERM"
    return f"unexpected error ({type(exc).__name__}: {exc}); please report it"


def _record_window(engine: Engine, campaign: str, window: str, run_id: int, planned: int) -> None:
    with Session(engine) as session:
        session.add(
            CampaignWindow(campaign=campaign, window=window, run_id=run_id, planned=planned)
        )
        session.commit()
