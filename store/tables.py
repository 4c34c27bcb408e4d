"""The store's tables, as SQLModel classes.

Times are stored as naive UTC (``TIMESTAMP WITHOUT TIME ZONE``); every datetime in the library is
naive UTC, converted at the edges (config timezones, ``--at`` offsets). Bulk paths (customers,
transactions, messages) go through :mod:`store.bulk`, never row by row.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import DDL, JSON, Column, DateTime, Index, LargeBinary, UniqueConstraint, event
from sqlmodel import Field, SQLModel

#: Bumped whenever a table changes shape; a store written by another version is refused.
SCHEMA_VERSION = 2


class Meta(SQLModel, table=True):
    """Key/value facts about the store itself (``schema_version``, ``demo_end``)."""

    __tablename__ = "meta"
    key: str = Field(primary_key=True)
    value: str


class Customer(SQLModel, table=True):
    """A customer; columns beyond the standard ones live in ``traits``."""

    __tablename__ = "customer"
    customer_id: str = Field(primary_key=True)
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    country: str | None = None
    timezone: str = "UTC"
    signup_at: datetime | None = Field(default=None, sa_type=DateTime)
    traits: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))


class Product(SQLModel, table=True):
    """A catalogue entry."""

    __tablename__ = "product"
    product_id: str = Field(primary_key=True)
    name: str | None = None
    category: str | None = None
    price: float | None = None


class Transaction(SQLModel, table=True):
    """One line of an invoice."""

    __tablename__ = "transaction_line"
    id: int | None = Field(default=None, primary_key=True)
    invoice: str
    customer_id: str = Field(index=True)
    product_id: str
    quantity: int
    unit_price: float
    invoiced_at: datetime = Field(sa_type=DateTime)


class SegmentModel(SQLModel, table=True):
    """A fitted segmentation model, versioned; the newest version assigns customers."""

    __tablename__ = "segment_model"
    version: int | None = Field(default=None, primary_key=True)
    created_at: datetime = Field(sa_type=DateTime)
    algorithm: str
    k: int
    #: The settings it was fitted with (features, seed), to tell when a refit is needed.
    settings: dict[str, Any] = Field(sa_column=Column(JSON))
    #: Segment profiles (id, name, size, share, means, z-scores) as fitted.
    profiles: list[dict[str, Any]] = Field(sa_column=Column(JSON))
    #: The pickled estimator. The store is trusted: only this tool writes it.
    blob: bytes = Field(sa_column=Column(LargeBinary))


class SegmentMembership(SQLModel, table=True):
    """Each customer's current segment, with when they entered it."""

    __tablename__ = "segment_membership"
    customer_id: str = Field(primary_key=True)
    segment_id: int
    model_version: int
    since: datetime = Field(sa_type=DateTime)


class SegmentEvent(SQLModel, table=True):
    """A customer entering or leaving a segment, as seen by one run."""

    __tablename__ = "segment_event"
    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(index=True)
    customer_id: str = Field(index=True)
    segment_id: int
    kind: str  # "entered" or "exited"
    at: datetime = Field(sa_type=DateTime)


class CampaignRun(SQLModel, table=True):
    """One ``campaign run``: its logical time, outcome and summary."""

    __tablename__ = "campaign_run"
    id: int | None = Field(default=None, primary_key=True)
    started_at: datetime = Field(sa_type=DateTime)
    finished_at: datetime | None = Field(default=None, sa_type=DateTime)
    at: datetime = Field(sa_type=DateTime)
    status: str = "running"  # running, succeeded, failed
    config_hash: str = ""
    summary: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    error: str | None = None


class CampaignWindow(SQLModel, table=True):
    """A trigger window a campaign has been planned for; a window is planned once."""

    __tablename__ = "campaign_window"
    __table_args__ = (UniqueConstraint("campaign", "window"),)
    id: int | None = Field(default=None, primary_key=True)
    campaign: str
    window: str
    run_id: int
    planned: int = 0


class Message(SQLModel, table=True):
    """The outbox: one row per message, unique by idempotency key.

    ``status`` goes queued -> sending -> sent, or -> failed with ``last_error`` and ``attempts``,
    or -> bounced (the address was refused for good and the customer is suppressed). A transient
    failure returns the message to queued with ``next_attempt_at`` (exponential backoff).
    """

    __tablename__ = "message"
    __table_args__ = (Index("ix_message_channel_status", "channel", "status"),)
    id: int | None = Field(default=None, primary_key=True)
    idempotency_key: str = Field(unique=True)
    run_id: int = Field(index=True)
    campaign: str = Field(index=True)
    window: str
    customer_id: str = Field(index=True)
    segment_id: int | None = None
    variant: str | None = None
    channel: str
    recipient: str | None = None
    subject: str = ""
    body_text: str = ""
    body_html: str | None = None
    #: Extra headers rendered from the campaign's ``headers`` templates.
    headers: dict[str, str] | None = Field(default=None, sa_column=Column(JSON))
    status: str = "queued"
    attempts: int = 0
    last_error: str | None = None
    created_at: datetime = Field(sa_type=DateTime)
    sent_at: datetime | None = Field(default=None, sa_type=DateTime)
    destination: str | None = None
    claimed_by: str | None = None
    claimed_until: datetime | None = Field(default=None, sa_type=DateTime)
    #: A message that failed transiently is queued again, to be claimed from this time on.
    next_attempt_at: datetime | None = Field(default=None, sa_type=DateTime)


class Exposure(SQLModel, table=True):
    """A customer exposed to a campaign variant (or held out).

    One row per customer and experiment, at the first exposure: the customer is the unit of
    randomisation and of analysis, so later messages of a recurring campaign are not new units.
    """

    __tablename__ = "exposure"
    __table_args__ = (
        UniqueConstraint("experiment", "customer_id"),
        # Covering: attribution finds an event's exposure (id, arm, time, covariate) from the
        # index alone.
        Index(
            "ix_exposure_lookup", "experiment", "customer_id", "variant", "exposed_at", "covariate"
        ),
    )
    id: int | None = Field(default=None, primary_key=True)
    experiment: str
    variant: str
    customer_id: str = Field(index=True)
    message_id: int | None = None
    exposed_at: datetime = Field(sa_type=DateTime)
    #: The CUPED covariate, fixed when the exposure is recorded: the customer's spend in the
    #: experiment's ``covariate_days`` before ``exposed_at``.
    covariate: float = 0.0


class Conversion(SQLModel, table=True):
    """A conversion (purchase, sign-up) attributed to a customer, from tracking or transactions."""

    __tablename__ = "conversion"
    id: int | None = Field(default=None, primary_key=True)
    customer_id: str = Field(index=True)
    message_id: int | None = None
    converted_at: datetime = Field(sa_type=DateTime)
    value: float = 0.0
    source: str = "tracking"
    #: "conversion" or "click" (clicks count for click-through, conversions for the rate).
    kind: str = "conversion"


class ExperimentDecision(SQLModel, table=True):
    """A promotion of an experiment's variant to the campaign's template, or its reversal.

    Append-only: the newest row for an experiment is in force; ``variant`` None means reverted.
    """

    __tablename__ = "experiment_decision"
    id: int | None = Field(default=None, primary_key=True)
    experiment: str = Field(index=True)
    variant: str | None = None
    decided_at: datetime = Field(sa_type=DateTime)


class ExposureCount(SQLModel, table=True):
    """Exposures per experiment, arm and UTC day, kept by database triggers on ``exposure``.

    Reports read these few rows instead of counting millions of exposures. The triggers fire in
    the inserting (or deleting) transaction, whoever writes, so the counts cannot drift.
    """

    __tablename__ = "exposure_count"
    experiment: str = Field(primary_key=True)
    variant: str = Field(primary_key=True)
    day: str = Field(primary_key=True)  # YYYY-MM-DD
    exposures: int = 0
    #: Sums of the exposures' covariate and of its square.
    covariate_sum: float = 0.0
    covariate_sq: float = 0.0


_EXPOSURE_COUNT_SQLITE = (
    "CREATE TRIGGER IF NOT EXISTS exposure_count_insert AFTER INSERT ON exposure BEGIN "
    "INSERT INTO exposure_count (experiment, variant, day, exposures, covariate_sum, "
    "covariate_sq) VALUES (NEW.experiment, NEW.variant, substr(NEW.exposed_at, 1, 10), 1, "
    "NEW.covariate, NEW.covariate * NEW.covariate) ON CONFLICT (experiment, variant, day) "
    "DO UPDATE SET exposures = exposures + 1, covariate_sum = covariate_sum + NEW.covariate, "
    "covariate_sq = covariate_sq + NEW.covariate * NEW.covariate; END",
    "CREATE TRIGGER IF NOT EXISTS exposure_count_delete AFTER DELETE ON exposure BEGIN "
    "UPDATE exposure_count SET exposures = exposures - 1, "
    "covariate_sum = covariate_sum - OLD.covariate, "
    "covariate_sq = covariate_sq - OLD.covariate * OLD.covariate WHERE experiment = "
    "OLD.experiment AND variant = OLD.variant AND day = substr(OLD.exposed_at, 1, 10); END",
)
# Statement-level triggers with transition tables: one grouped upsert per INSERT or COPY.
_EXPOSURE_COUNT_POSTGRES = (
    "CREATE OR REPLACE FUNCTION exposure_count_insert() RETURNS trigger LANGUAGE plpgsql AS $$ "
    "BEGIN INSERT INTO exposure_count (experiment, variant, day, exposures, covariate_sum, "
    "covariate_sq) SELECT experiment, variant, to_char(exposed_at, 'YYYY-MM-DD'), COUNT(*), "
    "SUM(covariate), SUM(covariate * covariate) FROM new_rows GROUP BY 1, 2, 3 "
    "ON CONFLICT (experiment, variant, day) DO UPDATE "
    "SET exposures = exposure_count.exposures + EXCLUDED.exposures, "
    "covariate_sum = exposure_count.covariate_sum + EXCLUDED.covariate_sum, "
    "covariate_sq = exposure_count.covariate_sq + EXCLUDED.covariate_sq; RETURN NULL; END $$",
    "CREATE OR REPLACE FUNCTION exposure_count_delete() RETURNS trigger LANGUAGE plpgsql AS $$ "
    "BEGIN UPDATE exposure_count c SET exposures = c.exposures - o.n, "
    "covariate_sum = c.covariate_sum - o.x, covariate_sq = c.covariate_sq - o.xx "
    "FROM (SELECT experiment, variant, to_char(exposed_at, 'YYYY-MM-DD') AS day, COUNT(*) AS n, "
    "SUM(covariate) AS x, SUM(covariate * covariate) AS xx FROM old_rows "
    "GROUP BY 1, 2, 3) o WHERE c.experiment = o.experiment AND c.variant = o.variant "
    "AND c.day = o.day; RETURN NULL; END $$",
    "CREATE TRIGGER exposure_count_insert AFTER INSERT ON exposure REFERENCING NEW TABLE AS "
    "new_rows FOR EACH STATEMENT EXECUTE FUNCTION exposure_count_insert()",
    "CREATE TRIGGER exposure_count_delete AFTER DELETE ON exposure REFERENCING OLD TABLE AS "
    "old_rows FOR EACH STATEMENT EXECUTE FUNCTION exposure_count_delete()",
)
# Created with exposure_count (after exposure: tables are created in name order).
for _statement in _EXPOSURE_COUNT_SQLITE:
    _ddl = DDL(_statement).execute_if(dialect="sqlite")  # type: ignore[no-untyped-call]
    event.listen(ExposureCount.__table__, "after_create", _ddl)  # type: ignore[attr-defined]
for _statement in _EXPOSURE_COUNT_POSTGRES:
    _ddl = DDL(_statement).execute_if(dialect="postgresql")  # type: ignore[no-untyped-call]
    event.listen(ExposureCount.__table__, "after_create", _ddl)  # type: ignore[attr-defined]


class Suppression(SQLModel, table=True):
    """A customer who must not be contacted, and why (unsubscribed, bounced, complained)."""

    __tablename__ = "suppression"
    customer_id: str = Field(primary_key=True)
    reason: str
    created_at: datetime = Field(sa_type=DateTime)


class CustomerEvent(SQLModel, table=True):
    """An event in the events feed (``cart_abandoned``, ``viewed_product``) that ``event``
    triggers fire on."""

    __tablename__ = "customer_event"
    id: int | None = Field(default=None, primary_key=True)
    customer_id: str = Field(index=True)
    event: str = Field(index=True)
    occurred_at: datetime = Field(sa_type=DateTime)


class PersonalizationModel(SQLModel, table=True):
    """A trained personalization model (``propensity``, ``uplift``), versioned per kind; the
    newest version of a kind is the one runs use."""

    __tablename__ = "personalization_model"
    __table_args__ = (UniqueConstraint("kind", "version"),)
    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(index=True)
    version: int
    created_at: datetime = Field(sa_type=DateTime)
    #: What it was trained on and how (target, source, seed).
    settings: dict[str, Any] = Field(sa_column=Column(JSON))
    #: The evaluation report (cross-validation, held-out metrics, curves).
    report: dict[str, Any] = Field(sa_column=Column(JSON))
    #: The pickled model. The store is trusted: only this tool writes it.
    blob: bytes = Field(sa_column=Column(LargeBinary))
