"""Engagement tracking: events from the endpoint, per-topic suppressions, messages keep their
reference, topic and tracked links; the shop's events posted to the endpoint keep their id.

Revision ID: 0003
Revises: 0002
Created: 2026-12-02 17:18:09.665773
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

#: Only adds (tables, nullable columns, indexes): a run may apply it by itself.
online_safe = True


def upgrade() -> None:
    op.create_table(
        "engagement_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dedupe_key", AutoString(), nullable=False),
        sa.Column("kind", AutoString(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=True),
        sa.Column("campaign", AutoString(), nullable=True),
        sa.Column("variant", AutoString(), nullable=True),
        sa.Column("customer_id", AutoString(), nullable=True),
        sa.Column("segment_id", sa.Integer(), nullable=True),
        sa.Column("occurred_at", sa.DateTime(), nullable=False),
        sa.Column("source", AutoString(), nullable=False),
        sa.Column("link", sa.Integer(), nullable=True),
        sa.Column("machine", sa.Boolean(), nullable=False),
        sa.Column("repeats", sa.Integer(), nullable=False),
        sa.Column("detail", AutoString(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("dedupe_key"),
    )
    with op.batch_alter_table("engagement_event", schema=None) as batch_op:
        batch_op.create_index(
            "ix_engagement_event_campaign_kind", ["campaign", "kind"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_engagement_event_customer_id"), ["customer_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_engagement_event_message_id"), ["message_id"], unique=False
        )

    op.create_table(
        "topic_suppression",
        sa.Column("customer_id", AutoString(), nullable=False),
        sa.Column("topic", AutoString(), nullable=False),
        sa.Column("reason", AutoString(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("customer_id", "topic"),
    )
    with op.batch_alter_table("customer_event", schema=None) as batch_op:
        batch_op.add_column(sa.Column("event_id", AutoString(), nullable=True))
        batch_op.create_index(batch_op.f("ix_customer_event_event_id"), ["event_id"], unique=True)

    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ref", AutoString(), nullable=True))
        batch_op.add_column(sa.Column("topic", AutoString(), nullable=True))
        batch_op.add_column(sa.Column("links", sa.JSON(), nullable=True))
        batch_op.create_index(batch_op.f("ix_message_ref"), ["ref"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_message_ref"))
        batch_op.drop_column("links")
        batch_op.drop_column("topic")
        batch_op.drop_column("ref")

    with op.batch_alter_table("customer_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_customer_event_event_id"))
        batch_op.drop_column("event_id")

    op.drop_table("topic_suppression")
    with op.batch_alter_table("engagement_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_engagement_event_message_id"))
        batch_op.drop_index(batch_op.f("ix_engagement_event_customer_id"))
        batch_op.drop_index("ix_engagement_event_campaign_kind")

    op.drop_table("engagement_event")
