"""a version in each project's row that a trigger moves whenever a column a get can show
changes: listings reuse the row the database last wrote while its version is unchanged

Membership changes reach it through the quota_version their own triggers move (0017).
Bookkeeping that no get shows (last_activity, quota_inputs, action_state) leaves it alone,
so the idle timer's writes do not make listings write rows again.

Revision ID: 0026
Revises: 0025
Create Date: 2026-11-30 17:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None

SHOWN = (
    "project_id, title, description, compute_image, created, last_edited, last_active, "
    "site_license, settings, course, invite, deleted, uid, run_state, run_state_time, "
    "run_state_error, action_request, name, env, invite_requests, owner_id, quota_version"
)


def upgrade() -> None:
    op.add_column(
        "projects", sa.Column("row_version", sa.Integer(), nullable=False, server_default="0")
    )
    # A listing's versions come from the index alone. The columns that change most often
    # (last_activity, run_state) are indexed already, so on PostgreSQL these updates were
    # never heap-only.
    op.create_index("ix_projects_row_versions", "projects", ["project_id", "row_version"])
    if op.get_bind().dialect.name == "sqlite":
        # SQLite's triggers cannot change NEW: the row is written again. The inner update
        # sets no column of SHOWN, so it does not fire the trigger again.
        op.execute(
            f"CREATE TRIGGER row_version_projects AFTER UPDATE OF {SHOWN} ON projects BEGIN "
            "UPDATE projects SET row_version = row_version + 1 WHERE rowid = NEW.rowid; END"
        )
        return
    op.execute(
        "CREATE FUNCTION calchub_bump_row_version() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN NEW.row_version := OLD.row_version + 1; RETURN NEW; END $$"
    )
    op.execute(
        f"CREATE TRIGGER row_version_projects BEFORE UPDATE OF {SHOWN} ON projects "
        "FOR EACH ROW EXECUTE FUNCTION calchub_bump_row_version()"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER row_version_projects")
    else:
        op.execute("DROP TRIGGER row_version_projects ON projects")
        op.execute("DROP FUNCTION calchub_bump_row_version()")
    op.drop_index("ix_projects_row_versions", table_name="projects")
    op.drop_column("projects", "row_version")
