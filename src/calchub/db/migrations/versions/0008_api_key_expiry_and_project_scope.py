"""API keys with an expiry and an optional project scope, as CoCalc's current API has them

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 01:05:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import calchub.db.types

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("expire", calchub.db.types.UtcDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("project_id", sa.String(length=36), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_api_keys_project_id_projects"),
            "projects",
            ["project_id"],
            ["project_id"],
            ondelete="CASCADE",
        )
        batch_op.create_index(batch_op.f("ix_api_keys_project_id"), ["project_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_keys_project_id"))
        batch_op.drop_constraint(batch_op.f("fk_api_keys_project_id_projects"), type_="foreignkey")
        batch_op.drop_column("project_id")
        batch_op.drop_column("expire")
