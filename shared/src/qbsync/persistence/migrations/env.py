"""Alembic environment: always run programmatically on a connection handed over by ``qbsync.persistence.migrate``."""

from __future__ import annotations

from alembic import context

from qbsync.persistence.tables import metadata

config = context.config
connection = config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through qbsync.persistence.migrate (or `qbsync db upgrade`), not bare alembic")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
