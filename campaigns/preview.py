"""Seeing before sending: ``campaign plan`` (who would get what, and why not) and
``campaign preview`` (the exact message for one customer). Neither writes anything."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd
from sqlmodel import Session, col, select

from campaigns.compose import HELD_OUT, compose
from campaigns.config.schema import Config
from campaigns.errors import CampaignError
from campaigns.experiments.sending import campaign_arms
from campaigns.personalization.for_templates import RunRecommendations
from campaigns.planner import DUE, CampaignPlan
from campaigns.run import config_hash, plan_run, prepare
from store.engine import opened_store
from store.tables import CampaignRun
from templates import make_environment


@dataclass(frozen=True)
class PlanRow:
    """One campaign and segment in a plan."""

    campaign: str
    status: str
    window: str
    segment: str
    audience: int
    messages: int


@dataclass
class PlanReport:
    """What a run at ``at`` would do, and what changed since the last run."""

    at: datetime
    rows: list[PlanRow] = field(default_factory=list)
    left_out: dict[str, dict[str, int]] = field(default_factory=dict)
    changes: list[str] = field(default_factory=list)


def plan_workspace(config: Config, at: datetime, only: str | None = None) -> PlanReport:
    """Plan a run at ``at`` without writing anything (a new model fit is not stored)."""
    if only is not None:
        config.require_campaign(only)
    with opened_store(config.store.url, config.root) as engine:
        ready = prepare(engine, config, at, persist=False)
        plans = plan_run(engine, config, ready, at, only)
        last = _last_run(engine)
    report = PlanReport(at=at)
    names = ready.model.names
    for plan in plans:
        window = plan.window or ("per customer" if plan.status == DUE else "")
        audience = plan.audience.groupby("segment_id").size()
        selected = plan.selected.groupby("segment_id").size()
        for sid in sorted(audience.index):
            report.rows.append(
                PlanRow(
                    plan.name,
                    plan.status,
                    window,
                    f"{sid} {names.get(int(sid), '?')}",
                    int(audience[sid]),
                    int(selected.get(sid, 0)),
                )
            )
        if audience.empty:
            report.rows.append(PlanRow(plan.name, plan.status, window, "(no customers)", 0, 0))
        if plan.left_out:
            report.left_out[plan.name] = dict(plan.left_out)
    report.changes = _changes(report, last, config)
    return report


def _last_run(engine: Any) -> CampaignRun | None:
    with Session(engine) as session:
        return session.exec(
            select(CampaignRun)
            .where(CampaignRun.status == "succeeded")
            .order_by(col(CampaignRun.id).desc())
        ).first()


def _changes(report: PlanReport, last: CampaignRun | None, config: Config) -> list[str]:
    """Audience changes per campaign and segment since the last successful run."""
    if last is None:
        return ["no earlier run: everything is new"]
    changes = []
    if last.config_hash and last.config_hash != config_hash(config):
        changes.append(f"config.toml changed since run {last.id}")
    before = {(r["campaign"], r["segment"]): int(r["audience"]) for r in last.summary}
    now = {(r.campaign, r.segment): r.audience for r in report.rows}
    for key in sorted(set(before) | set(now)):
        old, new = before.get(key), now.get(key)
        campaign, segment = key
        if old is None:
            changes.append(f"{campaign} / {segment}: new, audience {new:,}")
        elif new is None:
            changes.append(f"{campaign} / {segment}: no longer in the audience (was {old:,})")
        elif old != new:
            changes.append(f"{campaign} / {segment}: audience {old:,} -> {new:,} ({new - old:+,})")
    return changes or [f"no audience changed since run {last.id}"]


@dataclass(frozen=True)
class Preview:
    """One rendered message, and whether a run at that time would send it."""

    customer_id: str
    segment: str
    would_send: bool
    why: str
    subject: str
    text: str
    html: str | None
    #: The experiment arm the customer is in (None without an experiment).
    variant: str | None = None


def preview_messages(
    config: Config,
    campaign: str,
    at: datetime,
    customer_ids: list[str] | None = None,
    sample: int | None = None,
    seed: int = 0,
) -> list[Preview]:
    """Render ``campaign``'s message for the given customers, or for ``sample`` customers drawn
    (with ``seed``) from those a run at ``at`` would send it to."""
    config.require_campaign(campaign)
    with opened_store(config.store.url, config.root) as engine:
        ready = prepare(engine, config, at, persist=False)
        [plan] = plan_run(engine, config, ready, at, campaign)
        customers = ready.customers
        customer_ids = _choose(plan, customers, customer_ids, sample, seed)
        rows = _rows_for(plan, customers, customer_ids, at)
        # The customers' experiment arms, as a run would assign them (a holdout gets nothing).
        arms = campaign_arms(engine, plan.name, plan.config, rows["customer_id"])
    forced = CampaignPlan(plan.name, plan.config, DUE, plan.window, rows, rows)
    env = make_environment(config.path(config.templates))
    rendered = compose(
        forced,
        customers,
        ready.model.for_templates(),
        env,
        at,
        0,
        config.settings.unsubscribe_base_url,
        set(),
        arms=arms,
        recommendations=RunRecommendations(ready.shop, customers["segment_id"], at),
    )
    verdicts = _verdicts(plan, customer_ids)
    names = ready.model.labels
    held = rendered["status"] == HELD_OUT
    records: list[dict[str, Any]] = rendered.loc[~held].to_dict("records")  # type: ignore[assignment]
    previews = [
        Preview(
            customer_id=str(row["customer_id"]),
            segment=f"{row['segment_id']} {names.get(int(row['segment_id']), '?')}",
            would_send=verdicts[str(row["customer_id"])][0],
            why=verdicts[str(row["customer_id"])][1],
            subject=str(row["subject"]),
            text=str(row["body_text"]),
            html=row["body_html"] if isinstance(row["body_html"], str) else None,
            variant=row["variant"] if isinstance(row["variant"], str) else None,
        )
        for row in records
    ]
    segment_of = customers["segment_id"]
    previews += [
        Preview(
            customer_id=customer,
            segment=f"{segment_of[customer]} {names.get(int(segment_of[customer]), '?')}",
            would_send=False,
            why="held out by the experiment (measured, sent nothing)",
            subject="",
            text="",
            html=None,
            variant="holdout",
        )
        for customer in rendered.loc[held, "customer_id"]
    ]
    return previews


def _choose(
    plan: CampaignPlan,
    customers: pd.DataFrame,
    customer_ids: list[str] | None,
    sample: int | None,
    seed: int,
) -> list[str]:
    """The customers to preview: those asked for, or a seeded sample of who would get it."""
    if customer_ids is None:
        pool = plan.selected if plan.status == DUE else plan.audience
        count = min(sample or 5, len(pool))
        chosen = pool.sample(n=count, random_state=seed) if count else pool
        customer_ids = chosen["customer_id"].astype(str).tolist()
    missing = [c for c in customer_ids if c not in customers.index]
    if missing:
        raise CampaignError(f"no customer {missing[0]!r} in the store")
    return customer_ids


def _rows_for(
    plan: CampaignPlan, customers: pd.DataFrame, ids: list[str], at: datetime
) -> pd.DataFrame:
    window = plan.window or f"preview@{at:%Y-%m-%dT%H:%MZ}"
    windows = plan.audience.set_index("customer_id")["window"]
    return pd.DataFrame(
        {
            "customer_id": ids,
            "segment_id": customers.loc[ids, "segment_id"].astype(int).to_numpy(),
            "window": [windows.get(c, window) for c in ids],
        }
    )


def _verdicts(plan: CampaignPlan, ids: list[str]) -> dict[str, tuple[bool, str]]:
    selected = set(plan.selected["customer_id"].astype(str))
    audience = set(plan.audience["customer_id"].astype(str))
    out = {}
    for customer in ids:
        if plan.status != DUE:
            out[customer] = (False, f"campaign is {plan.status}")
        elif customer in selected:
            out[customer] = (True, "in the audience")
        elif customer in audience:
            out[customer] = (False, "left out (suppressed, capped or a higher-priority campaign)")
        else:
            out[customer] = (False, "not in the audience (segments, condition or trigger)")
    return out
