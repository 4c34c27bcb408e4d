"""Alembic's environment: migrations run on the connection (and transaction) that
:mod:`store.migrate` opened and locked; there is no alembic.ini and no URL here."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection
from sqlmodel import SQLModel

import store.tables  # noqa: F401  (registers the tables on SQLModel.metadata)

connection: Connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=SQLModel.metadata,
    # SQLite cannot ALTER most things: batch mode copies the table instead.
    render_as_batch=connection.dialect.name == "sqlite",
    # The caller holds one transaction around every pending migration: all of them apply, or none.
    transactional_ddl=True,
)
with context.begin_transaction():
    context.run_migrations()
