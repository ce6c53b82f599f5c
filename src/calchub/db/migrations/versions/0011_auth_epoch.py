"""a counter bumped by every change that can turn an API key's answer

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30 01:50:00
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

BUMP = "UPDATE counters SET value = value + 1 WHERE name = 'auth_epoch'"

# (trigger name, event, table, condition): the changes that can make a key stop working or
# change whom it stands for. accounts/key_cache.py relies on every one of them.
TRIGGERS = [
    ("auth_epoch_api_keys_delete", "DELETE", "api_keys", None),
    (
        "auth_epoch_api_keys_update",
        "UPDATE OF key_hash, expire, project_id, account_id",
        "api_keys",
        "OLD.key_hash IS DISTINCT FROM NEW.key_hash OR OLD.expire IS DISTINCT FROM NEW.expire"
        " OR OLD.project_id IS DISTINCT FROM NEW.project_id"
        " OR OLD.account_id IS DISTINCT FROM NEW.account_id",
    ),
    ("auth_epoch_accounts_delete", "DELETE", "accounts", None),
    (
        "auth_epoch_accounts_update",
        'UPDATE OF banned, deleted, "groups"',
        "accounts",
        "OLD.banned IS DISTINCT FROM NEW.banned OR OLD.deleted IS DISTINCT FROM NEW.deleted"
        ' OR CAST(OLD."groups" AS TEXT) IS DISTINCT FROM CAST(NEW."groups" AS TEXT)',
    ),
]
TRIGGER_NAMES = [name for name, _, _, _ in TRIGGERS]


def upgrade() -> None:
    op.execute("INSERT INTO counters (name, value) VALUES ('auth_epoch', 0)")
    if op.get_bind().dialect.name == "sqlite":
        for name, event, table, condition in TRIGGERS:
            # SQLite spells IS DISTINCT FROM as IS NOT.
            when = (
                ""
                if condition is None
                else "WHEN " + condition.replace("IS DISTINCT FROM", "IS NOT")
            )
            op.execute(f"CREATE TRIGGER {name} AFTER {event} ON {table} {when} BEGIN {BUMP}; END")
        return
    op.execute(
        "CREATE FUNCTION calchub_bump_auth_epoch() RETURNS trigger LANGUAGE plpgsql AS "
        f"$$ BEGIN {BUMP}; RETURN NULL; END $$"
    )
    for name, event, table, condition in TRIGGERS:
        # Deferred to commit: the counter row is locked last and briefly, so transactions
        # touching keys and accounts never wait on each other in a cycle through it.
        when = "" if condition is None else f"WHEN ({condition})"
        op.execute(
            f"CREATE CONSTRAINT TRIGGER {name} AFTER {event} ON {table} "
            f"DEFERRABLE INITIALLY DEFERRED FOR EACH ROW {when} "
            "EXECUTE FUNCTION calchub_bump_auth_epoch()"
        )


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    for name, _, table, _ in TRIGGERS:
        op.execute(f"DROP TRIGGER {name}" if sqlite else f"DROP TRIGGER {name} ON {table}")
    if not sqlite:
        op.execute("DROP FUNCTION calchub_bump_auth_epoch()")
    op.execute("DELETE FROM counters WHERE name = 'auth_epoch'")
