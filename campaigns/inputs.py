"""Gather what the planner needs from the store and the workspace (read-only)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
from sqlalchemy import Engine
from sqlmodel import Session, select

from campaigns.config.rules import Cap
from campaigns.config.schema import Config
from campaigns.errors import DataError
from campaigns.planner import PlanInputs
from store import outbox
from store.bulk import read_frame
from store.events import topic_suppressions
from store.frames import ShopData
from store.tables import CampaignWindow, Suppression


def gather_inputs(
    engine: Engine, config: Config, customers: pd.DataFrame, shop: ShopData, at: datetime
) -> PlanInputs:
    """Everything the planner reads besides the config, as of ``at``.

    Reads each customer's stored segment *before* this run records the new ones, so that
    ``segment_entered``/``segment_exited`` triggers (and a dry run) see the change.
    """
    previous = read_frame(engine, "SELECT customer_id, segment_id FROM segment_membership")
    caps: list[Cap] = [*config.settings.caps]
    for campaign in config.campaigns.values():
        caps.extend(campaign.caps)
    longest = max((cap.period for cap in caps), default=timedelta(0))
    history = (
        outbox.history(engine, at - longest)
        if caps
        else pd.DataFrame(columns=["customer_id", "campaign", "created_at"])
    )
    return PlanInputs(
        customers=customers,
        at=at,
        planned_windows=planned_windows(engine),
        suppressed=suppressed(engine) | do_not_contact(config),
        topic_suppressed=topic_suppressions(engine),
        previous_segments=previous.set_index("customer_id")["segment_id"].astype("int64"),
        events=shop.events,
        history=history,
        already_sent=lambda campaign, windows: outbox.existing_keys(engine, campaign, windows),
    )


def planned_windows(engine: Engine) -> set[tuple[str, str]]:
    """The (campaign, window) pairs earlier runs planned."""
    with Session(engine) as session:
        return {(w.campaign, w.window) for w in session.exec(select(CampaignWindow))}


def suppressed(engine: Engine) -> set[str]:
    """Customers the store says never to contact (unsubscribed, bounced, complained)."""
    with Session(engine) as session:
        return {s.customer_id for s in session.exec(select(Suppression))}


def do_not_contact(config: Config) -> set[str]:
    """Customer ids in the ``settings.do_not_contact`` file: one per line, or a CSV with a
    ``customer_id`` column. A UTF-8 byte-order mark is skipped; a row too short to hold the
    customer id is an error naming the file and line (the list is the law: no row is skipped)."""
    if config.settings.do_not_contact is None:
        return set()
    path = config.path(Path(config.settings.do_not_contact))
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise DataError(f"settings.do_not_contact: file not found: {path}") from None
    except UnicodeDecodeError as exc:
        raise DataError(
            f"settings.do_not_contact: {path} is not UTF-8 text ({exc.reason})"
        ) from None
    lines = [(n, line.strip()) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]
    if lines and "," in lines[0][1]:
        header = [h.strip() for h in lines[0][1].split(",")]
        if "customer_id" not in header:
            raise DataError(
                f"settings.do_not_contact: {path} has no customer_id column; its columns are: "
                + ", ".join(repr(h) for h in header)
            )
        column = header.index("customer_id")
        ids = set()
        for number, line in lines[1:]:
            fields = line.split(",")
            if len(fields) <= column or not fields[column].strip():
                raise DataError(
                    f"settings.do_not_contact: {path}:{number}: no customer_id in this row "
                    f"({len(fields)} field{'s' if len(fields) != 1 else ''}, customer_id is "
                    f"field {column + 1} of the header)"
                )
            ids.add(fields[column].strip())
        return ids
    values = [line for _, line in lines]
    return set(values[1:] if values and values[0] == "customer_id" else values)
