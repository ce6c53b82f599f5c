"""an exec job's pid and resource samples

Revision ID: 0024
Revises: 0023
Create Date: 2026-11-30 13:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


# A job's row is what any hub answers a poll from: the pid of its command and the samples of
# its processes go there while it runs, as its output does.
def upgrade() -> None:
    op.add_column("exec_jobs", sa.Column("pid", sa.Integer(), nullable=True))
    op.add_column(
        "exec_jobs",
        sa.Column(
            "stats",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
    )


def downgrade() -> None:
    op.drop_column("exec_jobs", "stats")
    op.drop_column("exec_jobs", "pid")
