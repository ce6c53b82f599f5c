"""an index on a project's owner and run state: the running-projects limit checked at every
start counts the owner's running projects, which otherwise reads the whole table

Revision ID: 0019
Revises: 0017
Create Date: 2026-11-30 05:00:00
"""

from __future__ import annotations

from alembic import op

revision = "0019"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_projects_owner_run_state", "projects", ["owner_id", "run_state"])


def downgrade() -> None:
    op.drop_index("ix_projects_owner_run_state", table_name="projects")
