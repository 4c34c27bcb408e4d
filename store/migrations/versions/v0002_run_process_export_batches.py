"""Runs record their process; file exports are two-phase; messages can be suppressed at send time.

Revision ID: 0002
Revises: 0001
Created: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

#: Only adds (tables, nullable columns, indexes): a run may apply it by itself.
online_safe = True


def upgrade() -> None:
    op.create_table(
        "export_batch",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel", AutoString(), nullable=False),
        sa.Column("token", AutoString(), nullable=False),
        sa.Column("path", AutoString(), nullable=False),
        sa.Column("temp_path", AutoString(), nullable=False),
        sa.Column("messages", sa.Integer(), nullable=False),
        sa.Column("status", AutoString(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("claimed_until", sa.DateTime(), nullable=True),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token"),
    )
    with op.batch_alter_table("export_batch", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_export_batch_status"), ["status"], unique=False)

    with op.batch_alter_table("campaign_run", schema=None) as batch_op:
        batch_op.add_column(sa.Column("host", AutoString(), nullable=True))
        batch_op.add_column(sa.Column("pid", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("alive_until", sa.DateTime(), nullable=True))

    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.add_column(sa.Column("first_failed_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.drop_column("first_failed_at")

    with op.batch_alter_table("campaign_run", schema=None) as batch_op:
        batch_op.drop_column("alive_until")
        batch_op.drop_column("pid")
        batch_op.drop_column("host")

    with op.batch_alter_table("export_batch", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_export_batch_status"))

    op.drop_table("export_batch")
