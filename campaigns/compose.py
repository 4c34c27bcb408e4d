"""Turn a campaign plan into outbox rows: idempotency keys, and each message rendered."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import pandas as pd
from jinja2.sandbox import ImmutableSandboxedEnvironment

from campaigns.engagement.links import Tracker
from campaigns.engagement.tokens import message_ref
from campaigns.errors import RenderBudgetError, RenderFailuresError
from campaigns.experiments.sending import CampaignArms, variant_context
from campaigns.experiments.spec import HOLDOUT, template_for
from campaigns.keys import idempotency_key
from campaigns.planner import CampaignPlan
from campaigns.rendering import Parallel, RenderJob, render_chunks
from store import outbox
from templates import MessageTemplate

if TYPE_CHECKING:
    from campaigns.personalization.for_templates import RunRecommendations

#: Columns of the frame :func:`compose` returns: the outbox's, less the attempt count.
OUTBOX_COLUMNS = tuple(c for c in outbox.MESSAGE_COLUMNS if c != "attempts")

#: Outbox status of a held-out customer's occasion: recorded, never delivered.
HELD_OUT = "held_out"

#: Outbox status of a message whose template failed for its customer (the error is in
#: ``last_error``): recorded, never delivered, never retried.
RENDER_FAILED = "render_failed"


class RunRenderBudget:
    """What rendering one run may cost (``[settings.limits]``): a deadline for all its messages
    (``run_render_seconds``) and the share of a campaign's messages that may fail to render
    (``max_render_failure_share``) before the run stops as a whole."""

    def __init__(self, seconds: float, max_failure_share: float) -> None:
        self.seconds = seconds
        self.ends = time.monotonic() + seconds
        self.max_failure_share = max_failure_share

    def check_time(self, campaign: str, done: int, total: int) -> None:
        """Raise :class:`RenderBudgetError` once the run's rendering time is up."""
        if time.monotonic() > self.ends:
            raise RenderBudgetError(
                f"rendering went over the run's budget of {self.seconds:g} s "
                f"([settings.limits] run_render_seconds) in campaign {campaign} "
                f"after {done:,} of {total:,} messages; nothing of this run was queued"
            )

    def check_failures(self, campaign: str, failures: list[tuple[str, str]], total: int) -> None:
        """Raise :class:`RenderFailuresError` as soon as more than the allowed share of the
        campaign's ``total`` messages failed: the template is broken, not one customer's data
        (and a template that hangs costs ``render_seconds`` per message: stop early)."""
        if len(failures) > self.max_failure_share * total:
            customer, error = failures[0]
            raise RenderFailuresError(
                f"campaign {campaign}: {len(failures):,} of {total:,} messages failed to render "
                f"(more than [settings.limits] max_render_failure_share = "
                f"{self.max_failure_share:.0%}); nothing of this run was queued. "
                f"First, customer {customer}: {error}"
            )


def unsubscribe_url(base: str, customer_id: str, campaign: str) -> str:
    """The link a template shows as ``unsubscribe_url``."""
    # Most ids are letters and digits, which quote() would return unchanged.
    safe_id = customer_id if customer_id.isalnum() else quote(customer_id)
    safe_campaign = campaign if campaign.isalnum() else quote(campaign)
    return f"{base}?customer={safe_id}&campaign={safe_campaign}"


def compose(
    plan: CampaignPlan,
    customers: pd.DataFrame,
    segments: Mapping[int, Mapping[str, Any]],
    env: ImmutableSandboxedEnvironment,
    at: datetime,
    run_id: int,
    unsubscribe_base: str,
    skip_keys: set[str],
    deferred: pd.Series | None = None,
    on_progress: Callable[[int], None] | None = None,
    arms: CampaignArms | None = None,
    recommendations: RunRecommendations | None = None,
    budget: RunRenderBudget | None = None,
    tracker: Tracker | None = None,
    parallel: Parallel | None = None,
) -> pd.DataFrame:
    """Render the messages of a due plan whose keys are not in ``skip_keys``, as one frame.

    The parameters are :func:`compose_chunks`'s.
    """
    chunks = list(
        compose_chunks(
            plan,
            customers,
            segments,
            env,
            at,
            run_id,
            unsubscribe_base,
            skip_keys,
            deferred=deferred,
            on_progress=on_progress,
            arms=arms,
            recommendations=recommendations,
            budget=budget,
            tracker=tracker,
            parallel=parallel,
        )
    )
    return pd.concat(chunks, ignore_index=True) if len(chunks) > 1 else chunks[0]


def compose_chunks(
    plan: CampaignPlan,
    customers: pd.DataFrame,
    segments: Mapping[int, Mapping[str, Any]],
    env: ImmutableSandboxedEnvironment,
    at: datetime,
    run_id: int,
    unsubscribe_base: str,
    skip_keys: set[str],
    deferred: pd.Series | None = None,
    on_progress: Callable[[int], None] | None = None,
    arms: CampaignArms | None = None,
    recommendations: RunRecommendations | None = None,
    budget: RunRenderBudget | None = None,
    tracker: Tracker | None = None,
    parallel: Parallel | None = None,
) -> Iterator[pd.DataFrame]:
    """Render the messages of a due plan whose keys are not in ``skip_keys``, chunk by chunk.

    Yields outbox rows in order, at most ``parallel.chunk_size`` messages at a time (one frame
    when ``parallel`` is None), then the holdout's placeholders; at least one frame, perhaps
    empty. A run writes each chunk to the outbox as it comes, so memory follows the chunk size,
    not the audience.

    :param customers: the run's customer table indexed by ``customer_id`` (traits, features)
    :param segments: segment id to what templates see as ``segment``
    :param deferred: per customer id, when quiet hours end (naive UTC) or NaT; deferred messages
        are queued with that ``next_attempt_at`` instead of being dropped
    :param arms: the experiment arm of each of ``plan.selected`` (same index): a customer gets
        their variant's template and ``variant`` context; the holdout gets no message
    :param recommendations: the run's recommender; templates of a campaign with
        ``recommendations`` in config get each customer's products
    :param budget: the run's rendering deadline (looked at every 100 messages) and the share of
        messages that may fail before the run stops (:class:`RunRenderBudget`)
    :param tracker: with ``[tracking]``: signed unsubscribe URLs and ``List-Unsubscribe``
        headers for every message, and tracked links and an open pixel for campaigns with
        ``track_links``
    :param parallel: how to spread rendering over processes (:mod:`campaigns.rendering`);
        None renders in this process

    A message whose template fails for its customer (a filter given a missing value, a budget
    exceeded) does not stop the others: its row has status :data:`RENDER_FAILED`, empty parts
    and the error in ``last_error``.
    """
    selected = plan.selected
    keys = [
        idempotency_key(plan.name, str(c), str(w))
        for c, w in zip(selected["customer_id"], selected["window"], strict=True)
    ]
    fresh = [k not in skip_keys for k in keys]
    selected = selected.loc[fresh]
    keys = [k for k, f in zip(keys, fresh, strict=True) if f]
    variants: list[str | None] = [None] * len(selected)
    held = selected.iloc[0:0]
    held_keys: list[str] = []
    if arms is not None:
        arm = arms.arms.loc[selected.index]
        sent = (arm != HOLDOUT).to_numpy()
        held = selected.loc[~sent]
        held_keys = [k for k, s in zip(keys, sent, strict=True) if not s]
        selected = selected.loc[sent]
        keys = [k for k, s in zip(keys, sent, strict=True) if s]
        variants = [str(v) for v in arm[sent]]
    templates = {
        v: MessageTemplate.load(
            env, template_for(plan.config, v), plan.config.subject, plan.config.headers
        )
        for v in list(dict.fromkeys(variants)) or [None]
    }
    track_links = tracker is not None and plan.config.track_links
    # With tracked links, templates whose static links are compiled to tracked ones (the plain
    # ones stay for a message whose compiled links cannot be trusted: Tracker.finish).
    compiled = (
        {
            v: MessageTemplate.load(
                tracker.environment(env),
                template_for(plan.config, v),
                plan.config.subject,
                plan.config.headers,
                html_first=True,
            )
            for v in templates
        }
        if tracker is not None and track_links
        else templates
    )
    contexts = {v: variant_context(plan.config, v) for v in templates}
    shown = (
        recommendations.for_campaign(
            plan.config.recommendations, selected["customer_id"].astype(str).tolist()
        )
        if recommendations is not None
        else {}
    )
    campaign = {
        "name": plan.name,
        "description": plan.config.description,
        # "discover" or "replenish" when the campaign shows recommendations, else None.
        "purpose": plan.config.recommendations.purpose
        if plan.config.recommendations is not None
        else None,
    }
    refs = [message_ref(k) for k in keys]
    job = RenderJob(
        campaign_name=plan.name,
        customers=customers,
        customer_ids=selected["customer_id"].to_numpy(),
        segment_ids=selected["segment_id"].astype(int).tolist(),
        variants=variants,
        refs=refs,
        segments=segments,
        campaign=campaign,
        at=at,
        unsubscribe_url=lambda customer: unsubscribe_url(unsubscribe_base, customer, plan.name),
        contexts=contexts,
        recommendations=shown,
        templates=templates,
        compiled=compiled,
        tracker=tracker,
        track_links=track_links,
        budget=budget,
    )
    ids = selected["customer_id"].astype(str).to_numpy()
    later = (
        deferred.reindex(ids).to_numpy()
        if deferred is not None
        else pd.Series(pd.NaT, index=range(len(ids)), dtype="datetime64[ns]").to_numpy()
    )
    windows = selected["window"].astype(str).to_numpy()
    segment_ids = selected["segment_id"].astype(int).to_numpy()
    yielded = False
    for start, stop, out in render_chunks(job, parallel, on_progress):
        messages = pd.DataFrame(
            {
                "idempotency_key": keys[start:stop],
                "run_id": run_id,
                "campaign": plan.name,
                "window": windows[start:stop],
                "customer_id": ids[start:stop],
                "segment_id": segment_ids[start:stop],
                "variant": variants[start:stop],
                "channel": plan.config.channel,
                "recipient": out.recipients,
                "subject": out.subjects,
                "body_text": out.texts,
                "body_html": out.htmls,
                "created_at": pd.Timestamp(at),
                "next_attempt_at": later[start:stop],
                "headers": out.headers,
                "last_error": out.errors,
                "ref": refs[start:stop],
                "topic": plan.config.topic,
                "links": out.links,
            },
            columns=list(OUTBOX_COLUMNS),
        )
        yielded = True
        yield _with_status(messages)
    if not yielded:
        yield _with_status(pd.DataFrame(columns=list(OUTBOX_COLUMNS)))
    if held.empty:
        return
    # The holdout's occasions are recorded too, as messages that are never delivered: the
    # occasion is then done (not planned again each run) and the outbox shows who was held out.
    placeholders = pd.DataFrame(
        {
            "idempotency_key": held_keys,
            "run_id": run_id,
            "campaign": plan.name,
            "window": held["window"].astype(str).to_numpy(),
            "customer_id": held["customer_id"].astype(str).to_numpy(),
            "segment_id": held["segment_id"].astype(int).to_numpy(),
            "variant": HOLDOUT,
            "channel": plan.config.channel,
            "recipient": None,
            "subject": "",
            "body_text": "",
            "body_html": None,
            "created_at": pd.Timestamp(at),
            "next_attempt_at": pd.NaT,
            "headers": None,
            "last_error": None,
            "ref": [message_ref(k) for k in held_keys],
            "topic": plan.config.topic,
            "links": None,
            "status": HELD_OUT,
        }
    )
    yield placeholders


def _with_status(messages: pd.DataFrame) -> pd.DataFrame:
    """Rendered rows queued, or ``render_failed`` (never delivered) where rendering failed."""
    failed = messages["last_error"].notna()
    messages["status"] = "queued"
    if failed.any():
        messages.loc[failed, "status"] = RENDER_FAILED
        messages.loc[failed, "next_attempt_at"] = pd.NaT
    return messages
