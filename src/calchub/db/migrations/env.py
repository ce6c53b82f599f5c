"""Alembic environment: migrations run on a connection handed in by calchub.db.engine."""

from __future__ import annotations

from alembic import context

from calchub.db.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with `calchub db upgrade` (it supplies the connection)")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
