"""Recording exposures and promotions in the store."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import Engine, text
from sqlmodel import Session, col, select

from store.bulk import insert_frame, read_frame, time_param
from store.tables import ExperimentDecision

#: Columns of an exposures frame (``message_id`` may be missing).
EXPOSURE_COLUMNS = ("experiment", "variant", "customer_id", "exposed_at", "message_id")


def existing_arms(engine: Engine, experiment: str) -> pd.Series:
    """The arm of every customer already exposed in ``experiment``, indexed by customer id."""
    frame = read_frame(
        engine,
        "SELECT customer_id, variant FROM exposure WHERE experiment = :e",
        {"e": experiment},
    )
    return pd.Series(
        frame["variant"].to_numpy(), index=frame["customer_id"].astype(str), dtype=object
    )


def time_value(engine: Engine, value: datetime) -> Any:
    """A time parameter as the store compares it: text on SQLite, a timestamp on PostgreSQL."""
    return value if engine.dialect.name == "postgresql" else time_param(value)


def pre_period_spend(engine: Engine, frame: pd.DataFrame, days: int) -> pd.Series:
    """Each row's customer spend in the ``days`` before its ``exposed_at`` (the CUPED covariate).

    One query reads the transaction lines between the earliest window start and the latest
    exposure; pandas matches them to the rows.
    """
    zero = pd.Series(0.0, index=frame.index)
    if days <= 0 or frame.empty:
        return zero
    exposed = pd.to_datetime(frame["exposed_at"])
    span = pd.Timedelta(days=days)
    lines = read_frame(
        engine,
        "SELECT customer_id, invoiced_at, quantity * unit_price AS amount FROM transaction_line "
        "WHERE invoiced_at >= :start AND invoiced_at < :stop",
        {
            "start": time_value(engine, (exposed.min() - span).to_pydatetime()),
            "stop": time_value(engine, exposed.max().to_pydatetime()),
        },
        datetime_columns=["invoiced_at"],
    )
    lines = lines[lines["customer_id"].isin(frame["customer_id"])]
    if lines.empty:
        return zero
    rows = pd.DataFrame({"row": frame.index, "customer_id": frame["customer_id"], "at": exposed})
    merged = rows.merge(lines, on="customer_id")
    inside = (merged["invoiced_at"] < merged["at"]) & (merged["invoiced_at"] >= merged["at"] - span)
    sums = merged[inside].groupby("row")["amount"].sum()
    return sums.reindex(frame.index, fill_value=0.0).astype(float)


def record_exposures(engine: Engine, frame: pd.DataFrame, covariate_days: int = 90) -> int:
    """Store the first exposure of each (experiment, customer) in ``frame``; return how many.

    ``frame`` has the columns :data:`EXPOSURE_COLUMNS` (``message_id`` optional). A customer
    already exposed in that experiment keeps their first exposure: the customer is the unit of
    analysis, so a repeat message is not a new unit. Within ``frame`` the earliest row counts.
    Each new exposure gets its CUPED covariate: the customer's spend in the ``covariate_days``
    before it (unless ``frame`` has a ``covariate`` column already).
    """
    if frame.empty:
        return 0
    rows = frame.copy()
    if "message_id" not in rows:
        rows["message_id"] = None
    rows["customer_id"] = rows["customer_id"].astype(str)
    rows = rows.sort_values("exposed_at", kind="stable").drop_duplicates(
        ["experiment", "customer_id"], keep="first"
    )
    fresh = []
    for experiment, group in rows.groupby("experiment", sort=False):
        seen = existing_arms(engine, str(experiment)).index
        fresh.append(group[~group["customer_id"].isin(seen)])
    new = pd.concat(fresh)
    if "covariate" not in new:
        new["covariate"] = pre_period_spend(engine, new, covariate_days)
    return insert_frame(engine, "exposure", new[[*EXPOSURE_COLUMNS, "covariate"]])


def promote(engine: Engine, experiment: str, variant: str | None, at: datetime) -> None:
    """Record that ``variant`` is now every customer's message (None reverts to the test)."""
    with Session(engine) as session:
        session.add(ExperimentDecision(experiment=experiment, variant=variant, decided_at=at))
        session.commit()


def promoted_variant(engine: Engine, experiment: str) -> str | None:
    """The variant promoted for ``experiment``, or None while the experiment runs."""
    with Session(engine) as session:
        latest = session.exec(
            select(ExperimentDecision)
            .where(ExperimentDecision.experiment == experiment)
            .order_by(col(ExperimentDecision.id).desc())
            .limit(1)
        ).first()
        return latest.variant if latest is not None else None


def decisions(engine: Engine, experiment: str) -> list[ExperimentDecision]:
    """Every promotion and reversal of ``experiment``, oldest first."""
    with Session(engine) as session:
        return list(
            session.exec(
                select(ExperimentDecision)
                .where(ExperimentDecision.experiment == experiment)
                .order_by(col(ExperimentDecision.id))
            )
        )


def stored_experiments(engine: Engine) -> dict[str, list[str]]:
    """Experiments with exposures in the store, and their arms (sorted)."""
    with engine.connect() as connection:
        rows: Sequence[tuple[str, str]] = connection.execute(
            text("SELECT DISTINCT experiment, variant FROM exposure ORDER BY experiment, variant")
        ).all()
    found: dict[str, list[str]] = {}
    for experiment, variant in rows:
        found.setdefault(experiment, []).append(variant)
    return found


@dataclass(frozen=True)
class DeliveryCounts:
    """Units of one arm by what happened to their messages.

    ``assigned`` is every exposure (intent to treat: the decision's denominator); of these,
    ``delivered`` had a message marked sent, ``failed`` only failed or bounced messages, and
    ``pending`` messages still queued (such as deferred by quiet hours) or none at all (the
    holdout is sent nothing).
    """

    assigned: int
    delivered: int
    failed: int

    @property
    def pending(self) -> int:
        return self.assigned - self.delivered - self.failed


def delivery_counts(engine: Engine, experiment: str, campaign: str) -> dict[str, DeliveryCounts]:
    """Per arm, the exposures of ``experiment`` by the outbox status of ``campaign``'s messages
    to the same customer, queued at or after the exposure."""
    sql = (
        "SELECT variant, COUNT(*), SUM(CASE WHEN sent > 0 THEN 1 ELSE 0 END), "
        "SUM(CASE WHEN sent = 0 AND failed > 0 THEN 1 ELSE 0 END) FROM ("
        "SELECT e.id, e.variant, "
        "SUM(CASE WHEN m.status = 'sent' THEN 1 ELSE 0 END) AS sent, "
        "SUM(CASE WHEN m.status IN ('failed', 'bounced') THEN 1 ELSE 0 END) AS failed "
        "FROM exposure e LEFT JOIN message m ON m.campaign = :c AND m.customer_id = e.customer_id "
        "AND m.created_at >= e.exposed_at WHERE e.experiment = :e GROUP BY e.id, e.variant"
        ") per_unit GROUP BY variant"
    )
    with engine.connect() as connection:
        rows = connection.execute(text(sql), {"e": experiment, "c": campaign}).all()
    return {
        str(variant): DeliveryCounts(int(n), int(sent or 0), int(failed or 0))
        for variant, n, sent, failed in rows
    }
