"""user_search's name indexes hold the other name too

Revision ID: 0027
Revises: 0026
Create Date: 2026-11-30 21:20:00
"""

from __future__ import annotations

from alembic import op

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None

# Each name's lowercase (on PostgreSQL in byte order, as 0020) followed by the other name:
# a search for a first name and the start of a last name ranges over one index and checks
# the other name in the same entries (accounts/search.py), reading the table only for the
# accounts that match.
NEW = [
    ("ix_accounts_name_first", "first_name", "last_name"),
    ("ix_accounts_name_last", "last_name", "first_name"),
]
OLD = [
    ("ix_accounts_first_name_lower", "first_name"),
    ("ix_accounts_last_name_lower", "last_name"),
]


def _collate() -> str:
    return "" if op.get_bind().dialect.name == "sqlite" else ' COLLATE "C"'


def upgrade() -> None:
    collate = _collate()
    for name, ranged, other in NEW:
        op.execute(f"CREATE INDEX {name} ON accounts (lower({ranged}){collate}, {other})")
    for name, _ in OLD:
        op.execute(f"DROP INDEX {name}")


def downgrade() -> None:
    collate = _collate()
    for name, column in OLD:
        op.execute(f"CREATE INDEX {name} ON accounts (lower({column}){collate})")
    for name, _, _ in NEW:
        op.execute(f"DROP INDEX {name}")
