"""``campaign report CAMPAIGN``: what became of a campaign's messages, for any campaign.

Counted per message (never per event): planned, queued, sent, delivered, bounced, opened (by a
person, or only by a machine), clicked (by a person), unsubscribed, complained, and converted
(an order by the customer within the attribution window after the message was planned, at the
run's time, as experiments count from exposure; each order counts once, for the latest message
before it). Rates: CTR = clicked / delivered, click-to-open = clicked / opened by a person. By
day (the run's day), by segment and by variant.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Any

import pandas as pd
from sqlalchemy import Engine

from campaigns.config.rules import parse_duration
from campaigns.config.schema import Config
from campaigns.segments import latest_model
from store.bulk import read_frame, time_param
from store.engine import opened_store

#: Shown with every report that counts opens.
OPENS_NOTE = (
    "Opens are an unreliable signal: image proxies and privacy features load the pixel without "
    "a person (counted as machine opens where recognised, which is not always), and mail "
    "clients that block images hide real opens. Judge a campaign by clicks and conversions."
)
#: The attribution window of a campaign without an experiment.
DEFAULT_WINDOW = "14d"

#: Per-message outcome columns, summed per group.
_COUNTS = (
    "planned",
    "queued",
    "sent",
    "delivered",
    "bounced",
    "failed",
    "suppressed",
    "opened",
    "machine_opened",
    "clicked",
    "unsubscribed",
    "complained",
    "converted",
)


@dataclass(frozen=True)
class Metrics:
    """Counts of messages (see the module docstring), revenue and the two rates."""

    planned: int = 0
    queued: int = 0
    sent: int = 0
    delivered: int = 0
    bounced: int = 0
    failed: int = 0
    suppressed: int = 0
    opened: int = 0
    machine_opened: int = 0
    clicked: int = 0
    unsubscribed: int = 0
    complained: int = 0
    converted: int = 0
    revenue: float = 0.0

    @property
    def ctr(self) -> float | None:
        """Clicked / delivered."""
        return self.clicked / self.delivered if self.delivered else None

    @property
    def click_to_open(self) -> float | None:
        """Clicked / opened by a person."""
        return self.clicked / self.opened if self.opened else None

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "ctr": self.ctr, "click_to_open": self.click_to_open}


@dataclass(frozen=True)
class CampaignReport:
    """A campaign's report: totals, and the same by day, segment and variant."""

    campaign: str
    topic: str
    tracked: bool
    window: str
    total: Metrics
    by_day: list[tuple[str, Metrics]] = field(default_factory=list)
    by_segment: list[tuple[str, Metrics]] = field(default_factory=list)
    by_variant: list[tuple[str, Metrics]] = field(default_factory=list)
    #: Messages confirmed delivered by a provider's event (the rest: sent and not bounced).
    confirmed_deliveries: int = 0
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        def rows(group: list[tuple[str, Metrics]], key: str) -> list[dict[str, Any]]:
            return [{key: name, **m.to_json()} for name, m in group]

        return {
            "campaign": self.campaign,
            "topic": self.topic,
            "tracked": self.tracked,
            "attribution_window": self.window,
            "total": self.total.to_json(),
            "confirmed_deliveries": self.confirmed_deliveries,
            "by_day": rows(self.by_day, "day"),
            "by_segment": rows(self.by_segment, "segment"),
            "by_variant": rows(self.by_variant, "variant"),
            "notes": self.notes,
        }


def _flags(engine: Engine, campaign: str, window: timedelta) -> tuple[pd.DataFrame, int]:
    """One row per message with a 0/1 column per outcome and its revenue."""
    messages = read_frame(
        engine,
        "SELECT id, customer_id, segment_id, variant, status, created_at, sent_at, "
        "CASE WHEN body_html IS NULL THEN 0 ELSE 1 END AS has_html "
        "FROM message WHERE campaign = :c AND status <> 'held_out'",
        params={"c": campaign},
        datetime_columns=["created_at", "sent_at"],
    )
    events = read_frame(
        engine,
        "SELECT message_id, kind, machine, detail FROM engagement_event "
        "WHERE campaign = :c AND message_id IS NOT NULL",
        params={"c": campaign},
    )
    frame = messages.set_index("id")
    status = frame["status"]
    frame["planned"] = 1
    frame["queued"] = status.isin(["queued", "sending", "exporting"]).astype(int)
    frame["failed"] = (status == "failed").astype(int)
    frame["suppressed"] = (status == "suppressed").astype(int)

    def having(mask: pd.Series) -> pd.Series:
        ids = set(events.loc[mask, "message_id"].astype(int))
        return pd.Series(frame.index.isin(list(ids)).astype(int), index=frame.index)

    machine = events["machine"].astype(bool)
    kind = events["kind"]
    hard = events["detail"].fillna("").str.startswith("hard")
    bounced = having((kind == "bounce") & hard) | (status == "bounced").astype(int)
    frame["bounced"] = bounced
    frame["sent"] = status.isin(["sent", "bounced"]).astype(int)
    frame["delivered"] = frame["sent"] & (1 - bounced)
    confirmed = int((having(kind == "delivery") & frame["delivered"]).sum())
    human_open = having((kind == "open") & ~machine)
    clicked = having((kind == "click") & ~machine)
    # A person who clicked saw the message, whatever the pixel said.
    frame["opened"] = human_open | clicked
    frame["machine_opened"] = having((kind == "open") & machine) & (1 - frame["opened"])
    frame["clicked"] = clicked
    frame["unsubscribed"] = having(kind == "unsubscribe")
    frame["complained"] = having(kind == "complaint")
    converted, revenue = _conversions(engine, frame, window)
    frame["converted"] = converted
    frame["revenue"] = revenue
    return frame, confirmed


def _conversions(
    engine: Engine, frame: pd.DataFrame, window: timedelta
) -> tuple[pd.Series, pd.Series]:
    zero = pd.Series(0, index=frame.index)
    sent = frame.loc[frame["sent_at"].notna(), ["customer_id", "created_at"]].reset_index()
    sent = sent.rename(columns={"created_at": "sent_at"})
    if sent.empty:
        return zero, zero.astype(float)
    orders = read_frame(
        engine,
        "SELECT customer_id, invoice, MIN(invoiced_at) AS at, SUM(quantity * unit_price) AS value "
        "FROM transaction_line WHERE invoiced_at >= :start AND invoiced_at < :stop "
        "GROUP BY customer_id, invoice",
        params={
            "start": time_param(sent["sent_at"].min().to_pydatetime()),
            "stop": time_param((sent["sent_at"].max() + window).to_pydatetime()),
        },
        datetime_columns=["at"],
    )
    joined = orders.merge(sent, on="customer_id")
    joined = joined[
        (joined["at"] >= joined["sent_at"]) & (joined["at"] < joined["sent_at"] + window)
    ]
    # Each order once: for the latest message before it.
    joined = joined.sort_values("sent_at").drop_duplicates(["customer_id", "invoice"], keep="last")
    per_message = joined.groupby("id")["value"].agg(["size", "sum"])
    converted = (per_message["size"] > 0).astype(int).reindex(frame.index, fill_value=0)
    revenue = per_message["sum"].astype(float).reindex(frame.index, fill_value=0.0)
    return converted, revenue


def _metrics(rows: pd.DataFrame) -> Metrics:
    sums = {name: int(rows[name].sum()) for name in _COUNTS}
    return Metrics(**sums, revenue=round(float(rows["revenue"].sum()), 2))


def _grouped(frame: pd.DataFrame, by: pd.Series) -> list[tuple[str, Metrics]]:
    return [(str(name), _metrics(rows)) for name, rows in frame.groupby(by, sort=True)]


def campaign_report(config: Config, campaign: str) -> CampaignReport:
    """The report of ``campaign`` (any campaign in the config) from the store."""
    settings = config.require_campaign(campaign)
    window_text = settings.experiment.attribution_window if settings.experiment else DEFAULT_WINDOW
    window = parse_duration(window_text)
    with opened_store(config.store.url, config.root) as engine:
        frame, confirmed = _flags(engine, campaign, window)
        model = latest_model(engine)
    names = {}
    if model is not None:
        names = {
            int(p["segment_id"]): config.segmentation.names.get(
                int(p["segment_id"]), str(p["name"])
            )
            for p in model.profiles
        }
    notes = []
    if frame.empty:
        notes.append(f"No messages of {campaign} in the outbox yet: run `campaign run` first.")
    tracked = settings.track_links and config.tracking is not None
    if not tracked:
        notes.append(
            "Links are not tracked for this campaign (track_links = true with a [tracking] "
            "section turns it on), so it shows no opens or clicks."
        )
    if not frame.empty and not frame["has_html"].any():
        notes.append(
            "These messages have no HTML part, so no open pixel: opened counts only the people "
            "who clicked, and click-to-open says nothing."
        )
    notes.append(OPENS_NOTE)
    day = frame["created_at"].dt.strftime("%Y-%m-%d")
    segment = frame["segment_id"].map(
        lambda s: f"{int(s)} {names.get(int(s), '')}".strip() if s == s and s is not None else "-"
    )
    variant = frame["variant"].fillna("-")
    return CampaignReport(
        campaign=campaign,
        topic=settings.topic,
        tracked=tracked,
        window=window_text,
        total=_metrics(frame),
        by_day=_grouped(frame, day),
        by_segment=_grouped(frame, segment),
        by_variant=_grouped(frame, variant) if settings.experiment else [],
        confirmed_deliveries=confirmed,
        notes=notes,
    )
