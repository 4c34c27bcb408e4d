"""journey definition kept for live edits

Revision ID: 0008
Revises: 0007
Created: 2026-12-03 11:45:41.490812
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

#: Only adds (tables, nullable columns, indexes): a run may apply it by itself.
online_safe = True


def upgrade() -> None:
    op.create_table(
        "journey_definition",
        sa.Column("journey", AutoString(), nullable=False),
        sa.Column("steps", sa.JSON(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("journey"),
    )


def downgrade() -> None:
    op.drop_table("journey_definition")
