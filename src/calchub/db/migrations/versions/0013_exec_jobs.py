"""asynchronous exec jobs

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-30 01:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import calchub.db.types

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "exec_jobs",
        sa.Column("job_id", sa.String(length=36), nullable=False),
        sa.Column("project_id", sa.String(length=36), nullable=False),
        sa.Column("command", sa.Text(), nullable=False),
        sa.Column(
            "args",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("stdout", sa.Text(), nullable=False),
        sa.Column("stderr", sa.Text(), nullable=False),
        sa.Column("exit_code", sa.Integer(), nullable=False),
        sa.Column("start", calchub.db.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column("finished", calchub.db.types.UtcDateTime(timezone=True), nullable=True),
        sa.Column("deadline", calchub.db.types.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.project_id"],
            name=op.f("fk_exec_jobs_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("job_id", name=op.f("pk_exec_jobs")),
    )
    op.create_index(op.f("ix_exec_jobs_project_id"), "exec_jobs", ["project_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_exec_jobs_project_id"), table_name="exec_jobs")
    op.drop_table("exec_jobs")
