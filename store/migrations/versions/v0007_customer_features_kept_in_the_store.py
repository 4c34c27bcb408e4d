"""Per-customer aggregates of the transaction log, kept in the store and folded in as lines
arrive: ``customer_feature`` (orders, net spend, first and last purchase) and
``customer_category_spend`` (net spend per product category). Both start empty; the first run
after this revision builds them (``store.features``).

Revision ID: 0007
Revises: 0006
Created: 2026-12-03 07:01:08.427208
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

#: Only adds (tables, nullable columns, indexes): a run may apply it by itself.
online_safe = True


def upgrade() -> None:
    op.create_table(
        "customer_category_spend",
        sa.Column("customer_id", AutoString(), nullable=False),
        sa.Column("category", AutoString(), nullable=False),
        sa.Column("spend", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("customer_id", "category"),
    )
    op.create_table(
        "customer_feature",
        sa.Column("customer_id", AutoString(), nullable=False),
        sa.Column("orders", sa.Integer(), nullable=False),
        sa.Column("monetary", sa.Float(), nullable=False),
        sa.Column("first_order_at", sa.DateTime(), nullable=True),
        sa.Column("last_order_at", sa.DateTime(), nullable=True),
        sa.Column("last_line_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("customer_id"),
    )


def downgrade() -> None:
    op.drop_table("customer_feature")
    op.drop_table("customer_category_spend")
