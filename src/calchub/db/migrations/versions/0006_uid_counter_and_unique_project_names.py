"""a counter for project uids; project names unique per owner in the database

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 22:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

UID_BASE = 1_000_000


def upgrade() -> None:
    op.create_table(
        "counters",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_counters")),
    )
    highest = op.get_bind().scalar(sa.text("SELECT MAX(uid) FROM projects"))
    op.execute(
        sa.text("INSERT INTO counters (name, value) VALUES ('project_uid', :value)").bindparams(
            value=max(UID_BASE - 1, highest or 0)
        )
    )
    with op.batch_alter_table("projects") as batch:
        batch.add_column(sa.Column("owner_id", sa.String(length=36), nullable=True))
    op.execute(
        "UPDATE projects SET owner_id = (SELECT account_id FROM project_users "
        "WHERE project_users.project_id = projects.project_id "
        "AND project_users.\"group\" = 'owner')"
    )
    # Names taken twice by one owner (possible before this revision) keep only the oldest.
    op.execute(
        "UPDATE projects SET name = NULL WHERE name IS NOT NULL AND name <> '' AND EXISTS ("
        "SELECT 1 FROM projects AS older WHERE older.owner_id = projects.owner_id "
        "AND lower(older.name) = lower(projects.name) AND (older.created < projects.created "
        "OR (older.created = projects.created AND older.project_id < projects.project_id)))"
    )
    op.create_index(
        "ix_projects_owner_name",
        "projects",
        ["owner_id", sa.text("lower(name)")],
        unique=True,
        sqlite_where=sa.text("name IS NOT NULL AND name <> ''"),
        postgresql_where=sa.text("name IS NOT NULL AND name <> ''"),
    )


def downgrade() -> None:
    op.drop_index("ix_projects_owner_name", table_name="projects")
    with op.batch_alter_table("projects") as batch:
        batch.drop_column("owner_id")
    op.drop_table("counters")
