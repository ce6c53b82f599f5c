"""a version on each project, which triggers move on every change of its row or its members

Revision ID: 0024
Revises: 0023
Create Date: 2026-11-30 11:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None

# A listing reuses a project's row as it last wrote it while the row's version is the one
# it wrote it at (userquery/row_texts.py). So a version must name one state of the row for
# good: every insert and update of the row takes a value never handed out before (on
# PostgreSQL from a sequence, which a rollback does not take back; on SQLite from a counter,
# whose rolled-back values no listing keeps, see db/row_versions.py), and a change of a
# member, which the row's `users` shows, updates the row. The write pays two small updates
# (SQLite) or a sequence step (PostgreSQL); every writer pays it, plain SQL included.

# Touches the rows of the projects a change concerns: on SQLite the row's update trigger,
# on PostgreSQL its BEFORE trigger, gives it its new version.
TOUCH = "UPDATE projects SET version = version WHERE project_id IN ({rows})"
SQLITE_NEXT = "UPDATE counters SET value = value + 1 WHERE name = 'project_version'"
SQLITE_SET = (
    "UPDATE projects SET version = (SELECT value FROM counters WHERE name = 'project_version')"
    " WHERE project_id = NEW.project_id"
)
# SQLite's updates of the row in its own trigger do not fire that trigger again: calchub
# leaves recursive_triggers off, SQLite's default (with it on, every project write would
# fail at the trigger depth limit rather than go unversioned).
SQLITE_TRIGGERS = [
    ("project_version_update", "AFTER UPDATE ON projects", f"{SQLITE_NEXT}; {SQLITE_SET}"),
    ("project_version_insert", "AFTER INSERT ON projects", TOUCH.format(rows="NEW.project_id")),
    (
        "project_version_members_insert",
        "AFTER INSERT ON project_users",
        TOUCH.format(rows="NEW.project_id"),
    ),
    (
        "project_version_members_update",
        "AFTER UPDATE ON project_users",
        TOUCH.format(rows="OLD.project_id, NEW.project_id"),
    ),
    (
        "project_version_members_delete",
        "AFTER DELETE ON project_users",
        TOUCH.format(rows="OLD.project_id"),
    ),
]
PG_FUNCTIONS = {
    "calchub_new_project_version": (
        "BEGIN NEW.version := nextval('project_versions'); RETURN NEW; END"
    ),
    "calchub_touch_member_projects": (
        "BEGIN "
        f"IF TG_OP = 'INSERT' THEN {TOUCH.format(rows='NEW.project_id')}; "
        f"ELSIF TG_OP = 'DELETE' THEN {TOUCH.format(rows='OLD.project_id')}; "
        f"ELSE {TOUCH.format(rows='OLD.project_id, NEW.project_id')}; END IF; "
        "RETURN NULL; END"
    ),
    # TRUNCATE fires no row trigger.
    "calchub_touch_all_projects": "BEGIN UPDATE projects SET version = version; RETURN NULL; END",
}
PG_TRIGGERS = [
    (
        "project_version",
        "BEFORE INSERT OR UPDATE ON projects FOR EACH ROW",
        "calchub_new_project_version",
    ),
    (
        "project_version_members",
        "AFTER INSERT OR UPDATE OR DELETE ON project_users FOR EACH ROW",
        "calchub_touch_member_projects",
    ),
    (
        "project_version_members_truncate",
        "AFTER TRUNCATE ON project_users FOR EACH STATEMENT",
        "calchub_touch_all_projects",
    ),
]


def upgrade() -> None:
    op.add_column(
        "projects", sa.Column("version", sa.BigInteger(), nullable=False, server_default="0")
    )
    if op.get_bind().dialect.name == "sqlite":
        op.execute("INSERT INTO counters (name, value) VALUES ('project_version', 0)")
        for name, when, body in SQLITE_TRIGGERS:
            op.execute(f"CREATE TRIGGER {name} {when} BEGIN {body}; END")
        return
    # Rows already there keep version 0; the sequence starts above it.
    op.execute("CREATE SEQUENCE project_versions AS bigint START 1")
    for name, body in PG_FUNCTIONS.items():
        op.execute(f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ {body} $$")
    for name, when, function in PG_TRIGGERS:
        op.execute(f"CREATE TRIGGER {name} {when} EXECUTE FUNCTION {function}()")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name, _, _ in SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER {name}")
        op.execute("DELETE FROM counters WHERE name = 'project_version'")
    else:
        for name, when, _ in PG_TRIGGERS:
            table = when.split(" ON ")[1].split()[0]
            op.execute(f"DROP TRIGGER {name} ON {table}")
        for name in PG_FUNCTIONS:
            op.execute(f"DROP FUNCTION {name}()")
        op.execute("DROP SEQUENCE project_versions")
    op.drop_column("projects", "version")
