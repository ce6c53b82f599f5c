"""a public id for each browser session

Revision ID: 0025
Revises: 0024
Create Date: 2026-11-30 14:20:00
"""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None

BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


# The sessions page names a session in its URLs. The stored digest cannot serve (any part of
# it can be matched against a cookie), so each session gets a random id that says nothing
# about its token. Sessions that exist already get theirs here: nobody is signed out.
def upgrade() -> None:
    op.add_column("web_sessions", sa.Column("id", sa.String(length=24), nullable=True))
    table = sa.table("web_sessions", sa.column("token_hash", sa.String), sa.column("id", sa.String))
    conn = op.get_bind()
    for (token_hash,) in conn.execute(sa.select(table.c.token_hash)).all():
        public_id = "".join(secrets.choice(BASE62) for _ in range(20))
        conn.execute(sa.update(table).where(table.c.token_hash == token_hash).values(id=public_id))
    with op.batch_alter_table("web_sessions", schema=None) as batch_op:
        batch_op.alter_column("id", existing_type=sa.String(length=24), nullable=False)
        batch_op.create_index(batch_op.f("ix_web_sessions_id"), ["id"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("web_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_web_sessions_id"))
        batch_op.drop_column("id")
