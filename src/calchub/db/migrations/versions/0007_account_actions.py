"""what accounts did when, for per-account rate limits

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29 23:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import calchub.db.types

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "account_actions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("account_id", sa.String(length=36), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("time", calchub.db.types.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account_actions")),
    )
    op.create_index(
        "ix_account_actions_lookup", "account_actions", ["account_id", "action", "time"]
    )


def downgrade() -> None:
    op.drop_index("ix_account_actions_lookup", table_name="account_actions")
    op.drop_table("account_actions")
