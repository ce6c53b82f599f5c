"""indexes for user_search: name prefixes and accounts newest first

Revision ID: 0020
Revises: 0019
Create Date: 2026-11-30 04:40:00
"""

from __future__ import annotations

from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

# accounts/search.py compares lower(name) against a prefix range; on PostgreSQL in byte order
# (COLLATE "C"), which is SQLite's own.
INDEXES = [
    ("ix_accounts_first_name_lower", "first_name"),
    ("ix_accounts_last_name_lower", "last_name"),
]


# Its order, newest first with the never active last (SQLite's NULLs sort first, so its DESC
# puts them last by itself).
RECENT = "ix_accounts_recent"


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    collate = "" if sqlite else ' COLLATE "C"'
    for name, column in INDEXES:
        op.execute(f"CREATE INDEX {name} ON accounts (lower({column}){collate})")
    nulls = "" if sqlite else " NULLS LAST"
    op.execute(f"CREATE INDEX {RECENT} ON accounts (last_active DESC{nulls}, created DESC)")


def downgrade() -> None:
    for name, _ in [*INDEXES, (RECENT, "")]:
        op.execute(f"DROP INDEX {name}")
