"""journeys: entries and moves

Revision ID: 0006
Revises: 0005
Created: 2026-12-03 07:00:03.744101
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

#: Only adds (tables, nullable columns, indexes): a run may apply it by itself.
online_safe = True


def upgrade() -> None:
    op.create_table(
        "journey_entry",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("journey", AutoString(), nullable=False),
        sa.Column("customer_id", AutoString(), nullable=False),
        sa.Column("entry_no", sa.Integer(), nullable=False),
        sa.Column("occasion", AutoString(), nullable=False),
        sa.Column("status", AutoString(), nullable=False),
        sa.Column("step", AutoString(), nullable=True),
        sa.Column("step_at", sa.DateTime(), nullable=True),
        sa.Column("due_at", sa.DateTime(), nullable=True),
        sa.Column("moves", sa.Integer(), nullable=False),
        sa.Column("exit_reason", AutoString(), nullable=True),
        sa.Column("entered_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("journey", "customer_id", "entry_no"),
    )
    with op.batch_alter_table("journey_entry", schema=None) as batch_op:
        batch_op.create_index(
            "ix_journey_entry_due",
            ["journey", "due_at"],
            unique=False,
            sqlite_where=sa.text("status = 'active'"),
            postgresql_where=sa.text("status = 'active'"),
        )
        batch_op.create_index(
            "ux_journey_entry_active",
            ["journey", "customer_id"],
            unique=True,
            sqlite_where=sa.text("status = 'active'"),
            postgresql_where=sa.text("status = 'active'"),
        )

    op.create_table(
        "journey_move",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("entry_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("journey", AutoString(), nullable=False),
        sa.Column("customer_id", AutoString(), nullable=False),
        sa.Column("step", AutoString(), nullable=True),
        sa.Column("outcome", AutoString(), nullable=False),
        sa.Column("to_step", AutoString(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("entry_id", "seq"),
    )
    with op.batch_alter_table("journey_move", schema=None) as batch_op:
        batch_op.create_index("ix_journey_move_journey", ["journey"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("journey_move", schema=None) as batch_op:
        batch_op.drop_index("ix_journey_move_journey")

    op.drop_table("journey_move")
    with op.batch_alter_table("journey_entry", schema=None) as batch_op:
        batch_op.drop_index(
            "ux_journey_entry_active",
            sqlite_where=sa.text("status = 'active'"),
            postgresql_where=sa.text("status = 'active'"),
        )
        batch_op.drop_index(
            "ix_journey_entry_due",
            sqlite_where=sa.text("status = 'active'"),
            postgresql_where=sa.text("status = 'active'"),
        )

    op.drop_table("journey_entry")
