"""agent_addresses: where each running project's agent answers over the network

Revision ID: 0021
Revises: 0020
Create Date: 2026-11-30 05:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from calchub.db.types import UtcDateTime

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "agent_addresses",
        sa.Column(
            "project_id",
            sa.String(36),
            sa.ForeignKey("projects.project_id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("job_id", sa.String(64), nullable=False),
        sa.Column("nonce", sa.String(64), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("port", sa.Integer, nullable=False),
        sa.Column("fingerprint", sa.String(128), nullable=False),
        sa.Column("recorded", UtcDateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("agent_addresses")
