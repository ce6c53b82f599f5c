"""user_search's recency index carries the columns it answers with

Revision ID: 0022
Revises: 0021
Create Date: 2026-11-30 08:00:00
"""

from __future__ import annotations

from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

NAME = "ix_accounts_recent"
# A common name prefix matches thousands of accounts; user_search reads them newest first
# along this index until it has enough. With the names, the flags it filters on and the
# columns it returns in the index, that read stays in the index (an index-only scan on
# PostgreSQL, a covering index on SQLite) instead of visiting a table row per account.
COVERED = "account_id, first_name, last_name, deleted, unlisted"


def _create(columns: str) -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    nulls = "" if sqlite else " NULLS LAST"  # SQLite's DESC puts NULLs last by itself
    op.execute(f"CREATE INDEX {NAME} ON accounts (last_active DESC{nulls}, created DESC{columns})")


def upgrade() -> None:
    op.execute(f"DROP INDEX {NAME}")
    _create(", " + COVERED)


def downgrade() -> None:
    op.execute(f"DROP INDEX {NAME}")
    _create("")
