"""Seeing before sending: ``campaign plan`` (who would get what, and why not) and
``campaign preview`` (the exact message for one customer). Neither writes anything."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd
from sqlmodel import Session, col, select

from campaigns.compose import HELD_OUT
from campaigns.config.schema import Config
from campaigns.counts import total
from campaigns.errors import CampaignError
from campaigns.planner import DUE, CampaignPlan
from campaigns.run import compose_plans, config_hash, plan_run, prepare
from campaigns.summary import SummaryRow, summary_rows, would_be
from store.engine import opened_store
from store.tables import CampaignRun


@dataclass
class PlanReport:
    """What a run at ``at`` would do, and what changed since the last run.

    ``rows`` are the rows of a dry run's summary, computed the same way (see
    :func:`campaigns.run.compose_plans`); ``windows`` gives each campaign's trigger window.
    """

    at: datetime
    rows: list[SummaryRow] = field(default_factory=list)
    windows: dict[str, str] = field(default_factory=dict)
    changes: list[str] = field(default_factory=list)
    #: Per due campaign, the messages the run would write (as a dry run's ``messages``).
    messages: dict[str, pd.DataFrame] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The plan as ``campaign plan --format json`` prints it."""
        return {
            "at": self.at.isoformat(timespec="seconds"),
            "totals": total(r.counts for r in self.rows).to_json(),
            "rows": [{**r.to_json(), "window": self.windows.get(r.campaign)} for r in self.rows],
            "changes": list(self.changes),
        }


def plan_workspace(config: Config, at: datetime, only: str | None = None) -> PlanReport:
    """Plan a run at ``at`` without writing anything (a new model fit is not stored): the plan,
    the messages rendered and counted as a dry run counts them."""
    if only is not None:
        config.require_campaign(only)
    with opened_store(config.store.url, config.root) as engine:
        ready = prepare(engine, config, at, persist=False)
        plans = plan_run(engine, config, ready, at, only)
        rendered = compose_plans(engine, config, plans, ready, at, 0).messages
        last = _last_run(engine)
    report = PlanReport(at=at, messages=rendered)
    report.rows = summary_rows(plans, rendered, would_be(rendered), ready.model.labels, {})
    report.windows = {
        p.name: p.window or ("per customer" if p.status == DUE else "") for p in plans
    }
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
    # Campaigns due now, compared with their audiences in that run (if they were due then).
    now = {(r.campaign, r.segment): r.counts.audience for r in report.rows if r.segment}
    due = {campaign for campaign, _ in now}
    before = {
        (r["campaign"], r["segment"]): int(r["audience"])
        for r in last.summary
        if r.get("segment") and r["campaign"] in due
    }
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
    (with ``seed``) from those a run at ``at`` would send it to (from those it matched, when it
    would send to nobody), and say for each whether the run would send it and why not.

    The plan is the whole run's (every campaign, arbitrated together), so a customer another
    campaign takes is shown as left out, as the run would leave them out.
    """
    config.require_campaign(campaign)
    with opened_store(config.store.url, config.root) as engine:
        ready = prepare(engine, config, at, persist=False)
        plans = plan_run(engine, config, ready, at)
        plan = next(p for p in plans if p.name == campaign)
        customers = ready.customers
        customer_ids = _choose(plan, customers, customer_ids, sample, seed)
        verdicts = _verdicts(plan, customers, customer_ids)
        # Who the run would message: rendered exactly as the run renders them.
        chosen = [c for c in customer_ids if verdicts[c][0]]
        rendered = compose_plans(
            engine, config, plans, ready, at, 0, customer_ids={campaign: chosen}
        ).messages.get(campaign)
        # The others: rendered for a look at what they would have got.
        others = [c for c in customer_ids if not verdicts[c][0]]
        if others:
            rows = _rows_for(plan, customers, others, at)
            forced = CampaignPlan(plan.name, plan.config, DUE, plan.window, rows, rows)
            extra = compose_plans(
                engine, config, [forced], ready, at, 0, customer_ids={campaign: others}
            ).messages[campaign]
            rendered = extra if rendered is None else pd.concat([rendered, extra])
    names = ready.model.labels
    by_id = {} if rendered is None else {str(r["customer_id"]): r for r in _records(rendered)}
    previews = []
    for customer in customer_ids:
        sid = int(str(customers.at[customer, "segment_id"]))
        would_send, why = verdicts[customer]
        row = by_id.get(customer)
        variant = row["variant"] if row is not None and isinstance(row["variant"], str) else None
        if row is None or row["status"] == HELD_OUT:
            if would_send:
                would_send, why = False, "held out by the experiment (measured, sent nothing)"
            message: tuple[str, str, str | None] = ("", "", None)
            variant = "holdout" if row is not None else None
        else:
            html = row["body_html"] if isinstance(row["body_html"], str) else None
            message = (str(row["subject"]), str(row["body_text"]), html)
        previews.append(
            Preview(customer, f"{sid} {names.get(sid, '?')}", would_send, why, *message, variant)
        )
    return previews


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return frame.to_dict("records")  # type: ignore[return-value]


def _choose(
    plan: CampaignPlan,
    customers: pd.DataFrame,
    customer_ids: list[str] | None,
    sample: int | None,
    seed: int,
) -> list[str]:
    """The customers to preview: those asked for, or a seeded sample of who would get it (of
    who it matched, when it would send to nobody)."""
    if customer_ids is None:
        pool = plan.selected["customer_id"].astype(str)
        if pool.empty:
            matched = customers.index[plan.left_out_rows["position"].to_numpy()]
            pool = pd.concat([plan.audience["customer_id"].astype(str), pd.Series(matched)])
            pool = pool.drop_duplicates().reset_index(drop=True)
        count = min(sample or 5, len(pool))
        customer_ids = pool.sample(n=count, random_state=seed).tolist() if count else []
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
            "position": customers.index.get_indexer(pd.Index(ids)),
        }
    )


def _verdicts(
    plan: CampaignPlan, customers: pd.DataFrame, ids: list[str]
) -> dict[str, tuple[bool, str]]:
    """Per customer: would the run send the campaign's message, and why (not)."""
    selected = set(plan.selected["customer_id"].astype(str))
    left = plan.left_out_rows
    reasons = dict(
        zip(
            customers.index[left["position"].to_numpy()].astype(str),
            left["reason"].astype(str),
            strict=True,
        )
    )
    out = {}
    for customer in ids:
        if plan.status != DUE:
            out[customer] = (False, f"campaign is {plan.status}")
        elif customer in selected:
            out[customer] = (True, "in the audience")
        elif customer in reasons:
            out[customer] = (False, f"left out ({reasons[customer]})")
        else:
            out[customer] = (False, "not in the audience (segments, condition or trigger)")
    return out
