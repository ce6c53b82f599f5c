"""the index an account's projects are found by carries the membership group and the project

Revision ID: 0023
Revises: 0022
Create Date: 2026-11-30 10:40:00
"""

from __future__ import annotations

from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None

OLD = "ix_project_users_account_id"
NEW = "ix_project_users_account_group"


# Listings find the projects an account may read by (account_id, group IN ...) and need only
# the project ids: with the group and the id in the index, that read never visits the table
# (a covering index on SQLite, an index-only scan on PostgreSQL) instead of a table row per
# project. It serves every lookup by account_id the old index served, so it replaces it.
def upgrade() -> None:
    op.create_index(NEW, "project_users", ["account_id", "group", "project_id"])
    op.drop_index(OLD, table_name="project_users")


def downgrade() -> None:
    op.create_index(OLD, "project_users", ["account_id"])
    op.drop_index(NEW, table_name="project_users")
