"""Release 0.1.0: the schema as it was before migrations (``schema_version`` 2 in ``meta``).

A store written by 0.1.0 has no ``alembic_version`` table; :mod:`store.migrate` recognises it by
its ``meta.schema_version`` of 2 and stamps it at this revision instead of running it.

Revision ID: 0001
Revises:
Created: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

#: Creates an empty store.
online_safe = True

# Exposures per experiment, arm and day, kept by triggers on ``exposure`` (see ExposureCount).
_EXPOSURE_COUNT_SQLITE = (
    "CREATE TRIGGER exposure_count_insert AFTER INSERT ON exposure BEGIN "
    "INSERT INTO exposure_count (experiment, variant, day, exposures, covariate_sum, "
    "covariate_sq) VALUES (NEW.experiment, NEW.variant, substr(NEW.exposed_at, 1, 10), 1, "
    "NEW.covariate, NEW.covariate * NEW.covariate) ON CONFLICT (experiment, variant, day) "
    "DO UPDATE SET exposures = exposures + 1, covariate_sum = covariate_sum + NEW.covariate, "
    "covariate_sq = covariate_sq + NEW.covariate * NEW.covariate; END",
    "CREATE TRIGGER exposure_count_delete AFTER DELETE ON exposure BEGIN "
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


def upgrade() -> None:
    op.create_table(
        "campaign_run",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("status", AutoString(), nullable=False),
        sa.Column("config_hash", AutoString(), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=True),
        sa.Column("error", AutoString(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "campaign_window",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign", AutoString(), nullable=False),
        sa.Column("window", AutoString(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("planned", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("campaign", "window"),
    )
    op.create_table(
        "conversion",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", AutoString(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=True),
        sa.Column("converted_at", sa.DateTime(), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("source", AutoString(), nullable=False),
        sa.Column("kind", AutoString(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_conversion_customer_id"), "conversion", ["customer_id"], unique=False)
    op.create_table(
        "customer",
        sa.Column("customer_id", AutoString(), nullable=False),
        sa.Column("email", AutoString(), nullable=True),
        sa.Column("first_name", AutoString(), nullable=True),
        sa.Column("last_name", AutoString(), nullable=True),
        sa.Column("country", AutoString(), nullable=True),
        sa.Column("timezone", AutoString(), nullable=False),
        sa.Column("signup_at", sa.DateTime(), nullable=True),
        sa.Column("traits", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("customer_id"),
    )
    op.create_table(
        "customer_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", AutoString(), nullable=False),
        sa.Column("event", AutoString(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_customer_event_customer_id"), "customer_event", ["customer_id"], unique=False
    )
    op.create_index(op.f("ix_customer_event_event"), "customer_event", ["event"], unique=False)
    op.create_table(
        "experiment_decision",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("experiment", AutoString(), nullable=False),
        sa.Column("variant", AutoString(), nullable=True),
        sa.Column("decided_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_experiment_decision_experiment"),
        "experiment_decision",
        ["experiment"],
        unique=False,
    )
    op.create_table(
        "exposure",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("experiment", AutoString(), nullable=False),
        sa.Column("variant", AutoString(), nullable=False),
        sa.Column("customer_id", AutoString(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=True),
        sa.Column("exposed_at", sa.DateTime(), nullable=False),
        sa.Column("covariate", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("experiment", "customer_id"),
    )
    op.create_index(op.f("ix_exposure_customer_id"), "exposure", ["customer_id"], unique=False)
    op.create_index(
        "ix_exposure_lookup",
        "exposure",
        ["experiment", "customer_id", "variant", "exposed_at", "covariate"],
        unique=False,
    )
    op.create_table(
        "exposure_count",
        sa.Column("experiment", AutoString(), nullable=False),
        sa.Column("variant", AutoString(), nullable=False),
        sa.Column("day", AutoString(), nullable=False),
        sa.Column("exposures", sa.Integer(), nullable=False),
        sa.Column("covariate_sum", sa.Float(), nullable=False),
        sa.Column("covariate_sq", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("experiment", "variant", "day"),
    )
    op.create_table(
        "message",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("idempotency_key", AutoString(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("campaign", AutoString(), nullable=False),
        sa.Column("window", AutoString(), nullable=False),
        sa.Column("customer_id", AutoString(), nullable=False),
        sa.Column("segment_id", sa.Integer(), nullable=True),
        sa.Column("variant", AutoString(), nullable=True),
        sa.Column("channel", AutoString(), nullable=False),
        sa.Column("recipient", AutoString(), nullable=True),
        sa.Column("subject", AutoString(), nullable=False),
        sa.Column("body_text", AutoString(), nullable=False),
        sa.Column("body_html", AutoString(), nullable=True),
        sa.Column("headers", sa.JSON(), nullable=True),
        sa.Column("status", AutoString(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", AutoString(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("sent_at", sa.DateTime(), nullable=True),
        sa.Column("destination", AutoString(), nullable=True),
        sa.Column("claimed_by", AutoString(), nullable=True),
        sa.Column("claimed_until", sa.DateTime(), nullable=True),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("idempotency_key"),
    )
    op.create_index(op.f("ix_message_campaign"), "message", ["campaign"], unique=False)
    op.create_index("ix_message_channel_status", "message", ["channel", "status"], unique=False)
    op.create_index(op.f("ix_message_customer_id"), "message", ["customer_id"], unique=False)
    op.create_index(op.f("ix_message_run_id"), "message", ["run_id"], unique=False)
    op.create_table(
        "meta",
        sa.Column("key", AutoString(), nullable=False),
        sa.Column("value", AutoString(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_table(
        "personalization_model",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", AutoString(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("settings", sa.JSON(), nullable=True),
        sa.Column("report", sa.JSON(), nullable=True),
        sa.Column("blob", sa.LargeBinary(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("kind", "version"),
    )
    op.create_index(
        op.f("ix_personalization_model_kind"), "personalization_model", ["kind"], unique=False
    )
    op.create_table(
        "product",
        sa.Column("product_id", AutoString(), nullable=False),
        sa.Column("name", AutoString(), nullable=True),
        sa.Column("category", AutoString(), nullable=True),
        sa.Column("price", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("product_id"),
    )
    op.create_table(
        "segment_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", AutoString(), nullable=False),
        sa.Column("segment_id", sa.Integer(), nullable=False),
        sa.Column("kind", AutoString(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_segment_event_customer_id"), "segment_event", ["customer_id"], unique=False
    )
    op.create_index(op.f("ix_segment_event_run_id"), "segment_event", ["run_id"], unique=False)
    op.create_table(
        "segment_membership",
        sa.Column("customer_id", AutoString(), nullable=False),
        sa.Column("segment_id", sa.Integer(), nullable=False),
        sa.Column("model_version", sa.Integer(), nullable=False),
        sa.Column("since", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("customer_id"),
    )
    op.create_table(
        "segment_model",
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("algorithm", AutoString(), nullable=False),
        sa.Column("k", sa.Integer(), nullable=False),
        sa.Column("settings", sa.JSON(), nullable=True),
        sa.Column("profiles", sa.JSON(), nullable=True),
        sa.Column("blob", sa.LargeBinary(), nullable=True),
        sa.PrimaryKeyConstraint("version"),
    )
    op.create_table(
        "suppression",
        sa.Column("customer_id", AutoString(), nullable=False),
        sa.Column("reason", AutoString(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("customer_id"),
    )
    op.create_table(
        "transaction_line",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("invoice", AutoString(), nullable=False),
        sa.Column("customer_id", AutoString(), nullable=False),
        sa.Column("product_id", AutoString(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("unit_price", sa.Float(), nullable=False),
        sa.Column("invoiced_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_transaction_line_customer_id"), "transaction_line", ["customer_id"], unique=False
    )

    triggers = {"sqlite": _EXPOSURE_COUNT_SQLITE, "postgresql": _EXPOSURE_COUNT_POSTGRES}
    for statement in triggers[op.get_bind().dialect.name]:
        op.execute(statement)


def downgrade() -> None:
    raise NotImplementedError("the first revision cannot be undone: drop the database instead")
