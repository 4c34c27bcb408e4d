"""The store's tables, as SQLModel classes.

Times are stored as naive UTC (``TIMESTAMP WITHOUT TIME ZONE``); every datetime in the library is
naive UTC, converted at the edges (config timezones, ``--at`` offsets). Bulk paths (customers,
transactions, messages) go through :mod:`store.bulk`, never row by row.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Index, LargeBinary, UniqueConstraint
from sqlmodel import Field, SQLModel

#: Bumped whenever a table changes shape; a store written by another version is refused.
SCHEMA_VERSION = 1


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

    ``status`` goes queued -> sending -> sent, or -> failed with ``last_error`` and ``attempts``.
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
    status: str = "queued"
    attempts: int = 0
    last_error: str | None = None
    created_at: datetime = Field(sa_type=DateTime)
    sent_at: datetime | None = Field(default=None, sa_type=DateTime)
    destination: str | None = None
    claimed_by: str | None = None
    claimed_until: datetime | None = Field(default=None, sa_type=DateTime)


class Exposure(SQLModel, table=True):
    """A customer exposed to a campaign variant (or held out)."""

    __tablename__ = "exposure"
    id: int | None = Field(default=None, primary_key=True)
    experiment: str = Field(index=True)
    variant: str
    customer_id: str = Field(index=True)
    message_id: int | None = None
    exposed_at: datetime = Field(sa_type=DateTime)


class Conversion(SQLModel, table=True):
    """A conversion (purchase, sign-up) attributed to a customer, from tracking or transactions."""

    __tablename__ = "conversion"
    id: int | None = Field(default=None, primary_key=True)
    customer_id: str = Field(index=True)
    message_id: int | None = None
    converted_at: datetime = Field(sa_type=DateTime)
    value: float = 0.0
    source: str = "tracking"


class Suppression(SQLModel, table=True):
    """A customer who must not be contacted, and why (unsubscribed, bounced, complained)."""

    __tablename__ = "suppression"
    customer_id: str = Field(primary_key=True)
    reason: str
    created_at: datetime = Field(sa_type=DateTime)
