"""a counter bumped by every change of a site setting

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-30 02:10:00
"""

from __future__ import annotations

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

BUMP = "UPDATE counters SET value = value + 1 WHERE name = 'settings_epoch'"
# site.py relies on every one of them.
TRIGGERS = [
    ("settings_epoch_insert", "INSERT"),
    ("settings_epoch_update", "UPDATE"),
    ("settings_epoch_delete", "DELETE"),
]


def upgrade() -> None:
    op.execute("INSERT INTO counters (name, value) VALUES ('settings_epoch', 0)")
    if op.get_bind().dialect.name == "sqlite":
        for name, event in TRIGGERS:
            op.execute(f"CREATE TRIGGER {name} AFTER {event} ON server_settings BEGIN {BUMP}; END")
        return
    op.execute(
        "CREATE FUNCTION calchub_bump_settings_epoch() RETURNS trigger LANGUAGE plpgsql AS "
        f"$$ BEGIN {BUMP}; RETURN NULL; END $$"
    )
    for name, event in TRIGGERS:
        # Settings change rarely; one bump per statement is enough.
        op.execute(
            f"CREATE TRIGGER {name} AFTER {event} ON server_settings "
            "FOR EACH STATEMENT EXECUTE FUNCTION calchub_bump_settings_epoch()"
        )


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    for name, _ in TRIGGERS:
        op.execute(f"DROP TRIGGER {name}" if sqlite else f"DROP TRIGGER {name} ON server_settings")
    if not sqlite:
        op.execute("DROP FUNCTION calchub_bump_settings_epoch()")
    op.execute("DELETE FROM counters WHERE name = 'settings_epoch'")
