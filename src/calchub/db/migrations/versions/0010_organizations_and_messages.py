"""organizations (with their admins and accounts.org) and messages between accounts

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30 01:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import calchub.db.types

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "organizations",
        sa.Column("organization_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=39), nullable=False),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("link", sa.Text(), nullable=True),
        sa.Column("email_address", sa.String(length=254), nullable=True),
        sa.Column("created", calchub.db.types.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("organization_id", name=op.f("pk_organizations")),
        sa.UniqueConstraint("name", name=op.f("uq_organizations_name")),
    )
    op.create_table(
        "organization_admins",
        sa.Column("organization_id", sa.String(length=36), nullable=False),
        sa.Column("account_id", sa.String(length=36), nullable=False),
        sa.Column("added", calchub.db.types.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.account_id"],
            name=op.f("fk_organization_admins_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.organization_id"],
            name=op.f("fk_organization_admins_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "organization_id", "account_id", name=op.f("pk_organization_admins")
        ),
    )
    op.create_index(
        op.f("ix_organization_admins_account_id"),
        "organization_admins",
        ["account_id"],
        unique=False,
    )
    op.create_table(
        "messages",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("from_id", sa.String(length=36), nullable=False),
        sa.Column("to_ids", JSON, nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("sent", calchub.db.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column("thread_id", sa.Integer(), nullable=True),
        sa.Column("sender_read", sa.Boolean(), nullable=False),
        sa.Column("sender_saved", sa.Boolean(), nullable=False),
        sa.Column("sender_deleted", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["from_id"],
            ["accounts.account_id"],
            name=op.f("fk_messages_from_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_messages")),
    )
    op.create_index(op.f("ix_messages_from_id"), "messages", ["from_id"], unique=False)
    op.create_index(op.f("ix_messages_thread_id"), "messages", ["thread_id"], unique=False)
    op.create_table(
        "message_recipients",
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.String(length=36), nullable=False),
        sa.Column("read", sa.Boolean(), nullable=False),
        sa.Column("saved", sa.Boolean(), nullable=False),
        sa.Column("starred", sa.Boolean(), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.account_id"],
            name=op.f("fk_message_recipients_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name=op.f("fk_message_recipients_message_id_messages"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("message_id", "account_id", name=op.f("pk_message_recipients")),
    )
    op.create_index(
        op.f("ix_message_recipients_account_id"),
        "message_recipients",
        ["account_id"],
        unique=False,
    )
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("org", sa.String(length=39), nullable=True))
        batch_op.create_index(batch_op.f("ix_accounts_org"), ["org"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_accounts_org"))
        batch_op.drop_column("org")
    op.drop_index(op.f("ix_message_recipients_account_id"), table_name="message_recipients")
    op.drop_table("message_recipients")
    op.drop_index(op.f("ix_messages_thread_id"), table_name="messages")
    op.drop_index(op.f("ix_messages_from_id"), table_name="messages")
    op.drop_table("messages")
    op.drop_index(op.f("ix_organization_admins_account_id"), table_name="organization_admins")
    op.drop_table("organization_admins")
    op.drop_table("organizations")
