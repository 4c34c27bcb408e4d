"""Turn a campaign plan into outbox rows: idempotency keys, and each message rendered."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import quote

import pandas as pd
from jinja2.sandbox import ImmutableSandboxedEnvironment

from campaigns.planner import CampaignPlan
from templates import MessageTemplate, build_context

#: Customer columns that are bookkeeping, not traits, and stay out of the template context.
_HIDDEN = frozenset({"segment_id"})


def idempotency_key(campaign: str, customer_id: str, window: str) -> str:
    """The key that makes a message unique: campaign, customer and trigger window."""
    return f"{campaign}:{customer_id}:{window}"


def unsubscribe_url(base: str, customer_id: str, campaign: str) -> str:
    """The link a template shows as ``unsubscribe_url``."""
    return f"{base}?customer={quote(customer_id)}&campaign={quote(campaign)}"


def compose(
    plan: CampaignPlan,
    customers: pd.DataFrame,
    segments: Mapping[int, Mapping[str, Any]],
    env: ImmutableSandboxedEnvironment,
    at: datetime,
    run_id: int,
    unsubscribe_base: str,
    skip_keys: set[str],
    on_progress: Callable[[int], None] | None = None,
) -> pd.DataFrame:
    """Render the messages of a due plan whose keys are not in ``skip_keys``.

    ``customers`` is the run's customer table indexed by ``customer_id`` (traits and features);
    ``segments`` maps segment id to what templates see as ``segment``.
    """
    assert plan.window is not None, "only due plans are composed"
    window = plan.window.key
    template = MessageTemplate.load(env, plan.config.template, plan.config.subject)
    selected = plan.selected
    keys = [idempotency_key(plan.name, str(c), window) for c in selected["customer_id"]]
    fresh = [k not in skip_keys for k in keys]
    selected = selected.loc[fresh]
    keys = [k for k, f in zip(keys, fresh, strict=True) if f]
    columns = [c for c in customers.columns if c not in _HIDDEN]
    records: list[dict[str, Any]] = customers.loc[  # type: ignore[assignment]
        selected["customer_id"], columns
    ].to_dict("records")
    campaign_info = {"name": plan.name, "description": plan.config.description}
    rows = []
    for done, (record, segment_id, key) in enumerate(
        zip(records, selected["segment_id"], keys, strict=True), start=1
    ):
        customer_id = str(record["customer_id"])
        context = build_context(
            customer=record,
            segment=segments[int(segment_id)],
            campaign=campaign_info,
            now=at,
            unsubscribe_url=unsubscribe_url(unsubscribe_base, customer_id, plan.name),
        )
        message = template.render(context)
        rows.append(
            {
                "idempotency_key": key,
                "run_id": run_id,
                "campaign": plan.name,
                "window": window,
                "customer_id": customer_id,
                "segment_id": int(segment_id),
                "variant": None,
                "channel": plan.config.channel,
                "recipient": record.get("email"),
                "subject": message.subject,
                "body_text": message.text,
                "body_html": message.html,
                "created_at": at,
            }
        )
        if on_progress is not None and done % 1000 == 0:
            on_progress(1000)
    if on_progress is not None:
        on_progress(len(rows) % 1000)
    return pd.DataFrame(rows, columns=list(_OUTBOX_COLUMNS))


_OUTBOX_COLUMNS = (
    "idempotency_key",
    "run_id",
    "campaign",
    "window",
    "customer_id",
    "segment_id",
    "variant",
    "channel",
    "recipient",
    "subject",
    "body_text",
    "body_html",
    "created_at",
)
