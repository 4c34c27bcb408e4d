"""The store's tables, as SQLModel classes.

These classes describe the schema at the newest migration; the migrations in
``store/migrations/versions`` create and change the tables (a test holds the two equal). A change
here needs a new migration: ``python -m store.new_migration "what it does"``.

Times are stored as naive UTC (``TIMESTAMP WITHOUT TIME ZONE``); every datetime in the library is
naive UTC, converted at the edges (config timezones, ``--at`` offsets). Bulk paths (customers,
transactions, messages) go through :mod:`store.bulk`, never row by row.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Index, LargeBinary, UniqueConstraint, text
from sqlmodel import Field, SQLModel


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


class CustomerFeature(SQLModel, table=True):
    """A customer's aggregates over the transaction log, kept up to date by
    :func:`store.features.refresh_features` (lines folded in as they arrive).

    ``orders`` counts distinct purchase invoices, ``monetary`` is net spend (returns and
    cancellations subtract), the dates are the first and last purchase. Features that depend on
    the time of a run (recency, tenure) are computed from them when read.
    """

    __tablename__ = "customer_feature"
    customer_id: str = Field(primary_key=True)
    orders: int
    monetary: float
    first_order_at: datetime | None = Field(default=None, sa_type=DateTime)
    last_order_at: datetime | None = Field(default=None, sa_type=DateTime)
    #: The latest line of any kind (returns included).
    last_line_at: datetime | None = Field(default=None, sa_type=DateTime)


class CustomerCategorySpend(SQLModel, table=True):
    """A customer's net spend per product category (the product's category as stored, "other"
    for lines without a known one), kept with :class:`CustomerFeature`."""

    __tablename__ = "customer_category_spend"
    customer_id: str = Field(primary_key=True)
    category: str = Field(primary_key=True)
    spend: float


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
    status: str = "running"  # running, succeeded, failed, died
    config_hash: str = ""
    summary: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    error: str | None = None
    #: The process running it, so that a later run can tell that it died (SIGKILL, power cut).
    host: str | None = None
    pid: int | None = None
    #: Pushed forward while the run works; a ``running`` run past it on another host has died.
    alive_until: datetime | None = Field(default=None, sa_type=DateTime)
    #: What the run planned from (the data's marks: load, last transaction and event, models) and
    #: until when no per-customer trigger can fire on that data; lets the next run find that it
    #: has nothing to do without reading the data (``campaigns/idle.py``). None: not recorded.
    watermark: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))


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
    __table_args__ = (
        Index("ix_message_channel_status", "channel", "status"),
        # Every step after a claim (read back, withhold, record, extend, finish) selects the
        # batch by ``claimed_by``: without it each is a scan of the whole outbox. Partial: the
        # rows a run writes (unclaimed) cost nothing to index.
        Index(
            "ix_message_claimed_by",
            "claimed_by",
            sqlite_where=text("claimed_by IS NOT NULL"),
            postgresql_where=text("claimed_by IS NOT NULL"),
        ),
    )
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
    #: When its first delivery attempt failed: retries go on until ``give_up_after`` from here.
    first_failed_at: datetime | None = Field(default=None, sa_type=DateTime)
    #: The message's reference in tracked URLs and provider events: the digest in its
    #: Message-ID (a hash of the idempotency key), never the customer id.
    ref: str | None = Field(default=None, unique=True, index=True)
    #: The campaign's subscription topic when the message was planned (suppressions are per topic).
    topic: str | None = None
    #: The tracked links' targets, in the order of their link numbers (a tracked redirect goes
    #: only to one of these).
    links: list[str] | None = Field(default=None, sa_column=Column(JSON))


class ExportBatch(SQLModel, table=True):
    """A file export in flight: recorded before its file is renamed into place.

    ``prepared``: the messages (status ``exporting``, ``claimed_by`` = ``token``) are written to
    ``temp_path``, to be renamed to ``path``. ``done``: renamed and the messages marked sent.
    ``rolled_back``: the file never reached ``path`` and the messages went back to the queue. A
    drain first finishes or rolls back every prepared batch, so a crash between the rename and the
    marks never exports a message twice.
    """

    __tablename__ = "export_batch"
    id: int | None = Field(default=None, primary_key=True)
    channel: str
    token: str = Field(unique=True)
    path: str
    temp_path: str
    messages: int
    status: str = Field(default="prepared", index=True)
    created_at: datetime = Field(sa_type=DateTime)
    #: Until then the batch belongs to the worker that prepared it; after, any drain recovers it.
    claimed_until: datetime | None = Field(default=None, sa_type=DateTime)
    finished_at: datetime | None = Field(default=None, sa_type=DateTime)


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
    the inserting (or deleting) transaction, whoever writes, so the counts cannot drift. They are
    created by the migrations (``store/migrations/versions``), as is every table here.
    """

    __tablename__ = "exposure_count"
    experiment: str = Field(primary_key=True)
    variant: str = Field(primary_key=True)
    day: str = Field(primary_key=True)  # YYYY-MM-DD
    exposures: int = 0
    #: Sums of the exposures' covariate and of its square.
    covariate_sum: float = 0.0
    covariate_sq: float = 0.0


class Suppression(SQLModel, table=True):
    """A customer who must not be contacted, and why (unsubscribed, bounced, complained)."""

    __tablename__ = "suppression"
    customer_id: str = Field(primary_key=True)
    reason: str
    created_at: datetime = Field(sa_type=DateTime)


class TopicSuppression(SQLModel, table=True):
    """A customer who must not get one subscription topic (``*``: every topic but transactional).

    Written by an unsubscribe (one topic, or all) and a complaint (all marketing); a hard bounce
    is a :class:`Suppression` instead, since the address itself does not work.
    """

    __tablename__ = "topic_suppression"
    customer_id: str = Field(primary_key=True)
    topic: str = Field(primary_key=True)
    reason: str
    created_at: datetime = Field(sa_type=DateTime)


class EngagementEvent(SQLModel, table=True):
    """Something that came back from a message: a click, an open, an unsubscribe, a delivery,
    a bounce or a complaint (from the endpoint, a provider webhook or an imported file).

    Stored once per ``dedupe_key``; a repeat (a second click, a webhook delivered again) adds
    one to ``repeats`` instead of a row.
    """

    __tablename__ = "engagement_event"
    __table_args__ = (Index("ix_engagement_event_campaign_kind", "campaign", "kind"),)
    id: int | None = Field(default=None, primary_key=True)
    dedupe_key: str = Field(unique=True)
    kind: str  # click, open, unsubscribe, delivery, bounce, complaint
    message_id: int | None = Field(default=None, index=True)
    campaign: str | None = None
    variant: str | None = None
    customer_id: str | None = Field(default=None, index=True)
    segment_id: int | None = None
    occurred_at: datetime = Field(sa_type=DateTime)
    #: Where it came from: endpoint, webhook, mailgun, file.
    source: str = "endpoint"
    #: The tracked link's number (clicks).
    link: int | None = None
    #: An open or click judged to come from a machine (image proxy, link scanner).
    machine: bool = False
    #: Times it came again after the first.
    repeats: int = 0
    #: Anything else worth keeping: the topic of an unsubscribe, a bounce's reason.
    detail: str | None = None


class CustomerEvent(SQLModel, table=True):
    """An event in the events feed (``cart_abandoned``, ``viewed_product``) that ``event``
    triggers fire on."""

    __tablename__ = "customer_event"
    id: int | None = Field(default=None, primary_key=True)
    customer_id: str = Field(index=True)
    event: str = Field(index=True)
    occurred_at: datetime = Field(sa_type=DateTime)
    #: The shop's own id of an event posted to the endpoint (``POST /events``), unique; None for
    #: events from the source's feed, which a load replaces (posted events stay).
    event_id: str | None = Field(default=None, unique=True, index=True)


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


class JourneyEntry(SQLModel, table=True):
    """One customer's entry into a journey: where they are and when their step is due.

    ``status`` is active (``step`` and ``due_at`` set), exited (``exit_reason`` says why) or
    completed. ``moves`` counts the steps taken; every move is guarded by it, so a step is taken
    once however many runs try it. A customer has at most one active entry per journey: the
    partial unique index says so in the database.
    """

    __tablename__ = "journey_entry"
    __table_args__ = (
        UniqueConstraint("journey", "customer_id", "entry_no"),
        Index(
            "ux_journey_entry_active",
            "journey",
            "customer_id",
            unique=True,
            sqlite_where=text("status = 'active'"),
            postgresql_where=text("status = 'active'"),
        ),
        Index(
            "ix_journey_entry_due",
            "journey",
            "due_at",
            sqlite_where=text("status = 'active'"),
            postgresql_where=text("status = 'active'"),
        ),
    )
    id: int | None = Field(default=None, primary_key=True)
    journey: str
    customer_id: str
    entry_no: int
    #: The trigger occasion it entered on (one entry per occasion).
    occasion: str
    status: str = "active"
    step: str | None = None
    #: When it arrived at ``step`` (a wait_for looks for events since then).
    step_at: datetime | None = Field(default=None, sa_type=DateTime)
    due_at: datetime | None = Field(default=None, sa_type=DateTime)
    moves: int = 0
    exit_reason: str | None = None
    entered_at: datetime = Field(sa_type=DateTime)
    finished_at: datetime | None = Field(default=None, sa_type=DateTime)


class JourneyMove(SQLModel, table=True):
    """One step taken by one journey entry: the step, how it ended (``outcome``: sent, waited,
    clicked, timeout, true, false, a random branch, or an exit reason) and where it went.

    Written in the transaction that moves the entry (and queues its message), unique by
    (entry, move number): a replayed move cannot be recorded twice.
    """

    __tablename__ = "journey_move"
    __table_args__ = (
        UniqueConstraint("entry_id", "seq"),
        Index("ix_journey_move_journey", "journey"),
    )
    id: int | None = Field(default=None, primary_key=True)
    entry_id: int
    seq: int
    journey: str
    customer_id: str
    #: The step taken (None for an exit checked before a step, then ``step`` is where they were).
    step: str | None = None
    outcome: str
    #: The next step, "exit" or "completed".
    to_step: str
    at: datetime = Field(sa_type=DateTime)
    run_id: int


class JourneyDefinition(SQLModel, table=True):
    """The definition of a journey its last advancing run knew: per step, in order, its name,
    kind, single way on (``successor``: a step, "exit", or None when it branches) and the send
    step a wait_for watches (``on``). A run compares it with the config to move the entries of
    a renamed or removed step (``campaigns.journeys.edits``), in the transaction that stores the
    new one."""

    __tablename__ = "journey_definition"
    journey: str = Field(primary_key=True)
    steps: list[dict[str, Any]] = Field(sa_column=Column(JSON, nullable=False))
    run_id: int
    updated_at: datetime = Field(sa_type=DateTime)
