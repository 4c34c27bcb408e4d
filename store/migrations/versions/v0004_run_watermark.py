"""Runs record a watermark: what they planned from, so that an idle run can skip the data.

Revision ID: 0004
Revises: 0003
Created: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

#: Only adds (a nullable column): a run may apply it by itself.
online_safe = True


def upgrade() -> None:
    with op.batch_alter_table("campaign_run", schema=None) as batch_op:
        batch_op.add_column(sa.Column("watermark", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("campaign_run", schema=None) as batch_op:
        batch_op.drop_column("watermark")
