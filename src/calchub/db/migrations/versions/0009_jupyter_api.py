"""Jupyter execute results cache and the log of executes that ran

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 01:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import calchub.db.types

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "jupyter_api_cache",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("hash", sa.String(length=40), nullable=False),
        sa.Column(
            "output",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created", calchub.db.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column("last_active", calchub.db.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column("expire", calchub.db.types.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jupyter_api_cache")),
        sa.UniqueConstraint("hash", name=op.f("uq_jupyter_api_cache_hash")),
    )
    with op.batch_alter_table("jupyter_api_cache", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_jupyter_api_cache_expire"), ["expire"], unique=False)
    op.create_table(
        "jupyter_api_log",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("created", calchub.db.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column("account_id", sa.String(length=36), nullable=True),
        sa.Column("client", sa.String(length=64), nullable=True),
        sa.Column("project_id", sa.String(length=36), nullable=True),
        sa.Column("hash", sa.String(length=40), nullable=True),
        sa.Column("kernel", sa.String(length=200), nullable=True),
        sa.Column("total_time_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jupyter_api_log")),
    )
    with op.batch_alter_table("jupyter_api_log", schema=None) as batch_op:
        batch_op.create_index(
            "ix_jupyter_api_log_account_created", ["account_id", "created"], unique=False
        )
        batch_op.create_index(
            "ix_jupyter_api_log_client_created", ["client", "created"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_jupyter_api_log_created"), ["created"], unique=False)


def downgrade() -> None:
    op.drop_table("jupyter_api_log")
    op.drop_table("jupyter_api_cache")
