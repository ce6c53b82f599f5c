"""what a project's quota takes from other rows, kept with the project and a version that
triggers move whenever one of those rows changes

Revision ID: 0017
Revises: 0014
Create Date: 2026-11-30 04:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0017"
down_revision = "0014"
branch_labels = None
depends_on = None

BUMP = "UPDATE projects SET quota_version = quota_version + 1 WHERE project_id = {row}.project_id"
# A license's terms reach every project that has it applied; a change is rare, so every
# project with any license is bumped rather than looking inside the JSON.
BUMP_LICENSED = (
    "UPDATE projects SET quota_version = quota_version + 1 WHERE site_license IS NOT NULL"
)
LICENSE_TERMS = "expires, activates, upgrades, quota, run_limit"
# projects/lifecycle.py relies on every one of them (see QUOTA_TRIGGERS there).
SQLITE_TRIGGERS = [
    ("quota_version_members_insert", "AFTER INSERT ON project_users", BUMP.format(row="NEW")),
    ("quota_version_members_delete", "AFTER DELETE ON project_users", BUMP.format(row="OLD")),
    (
        "quota_version_members_update",
        "AFTER UPDATE ON project_users",
        f"{BUMP.format(row='OLD')}; {BUMP.format(row='NEW')}",
    ),
    (
        "quota_version_licenses_applied",
        "AFTER UPDATE OF site_license ON projects",
        BUMP.format(row="NEW"),
    ),
    (
        "quota_version_license_terms",
        f"AFTER UPDATE OF {LICENSE_TERMS} ON site_licenses",
        BUMP_LICENSED,
    ),
    ("quota_version_license_deleted", "AFTER DELETE ON site_licenses", BUMP_LICENSED),
]


def upgrade() -> None:
    op.add_column(
        "projects",
        sa.Column("quota_version", sa.Integer(), nullable=False, server_default="0"),
    )
    op.add_column(
        "projects",
        sa.Column(
            "quota_inputs",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
    )
    if op.get_bind().dialect.name == "sqlite":
        for name, when, body in SQLITE_TRIGGERS:
            op.execute(f"CREATE TRIGGER {name} {when} BEGIN {body}; END")
        return
    op.execute(
        "CREATE FUNCTION calchub_bump_member_quota() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        f"IF TG_OP IN ('UPDATE', 'DELETE') THEN {BUMP.format(row='OLD')}; END IF; "
        f"IF TG_OP IN ('UPDATE', 'INSERT') THEN {BUMP.format(row='NEW')}; END IF; "
        "RETURN NULL; END $$"
    )
    op.execute(
        "CREATE FUNCTION calchub_bump_licensed_quota() RETURNS trigger LANGUAGE plpgsql AS "
        f"$$ BEGIN {BUMP_LICENSED}; RETURN NULL; END $$"
    )
    op.execute(
        "CREATE FUNCTION calchub_bump_applied_quota() RETURNS trigger LANGUAGE plpgsql AS "
        f"$$ BEGIN {BUMP.format(row='NEW')}; RETURN NULL; END $$"
    )
    op.execute(
        "CREATE TRIGGER quota_version_members AFTER INSERT OR UPDATE OR DELETE ON project_users "
        "FOR EACH ROW EXECUTE FUNCTION calchub_bump_member_quota()"
    )
    op.execute(
        "CREATE TRIGGER quota_version_licenses_applied AFTER UPDATE OF site_license ON projects "
        "FOR EACH ROW EXECUTE FUNCTION calchub_bump_applied_quota()"
    )
    op.execute(
        f"CREATE TRIGGER quota_version_license_terms AFTER UPDATE OF {LICENSE_TERMS} "
        "ON site_licenses FOR EACH STATEMENT EXECUTE FUNCTION calchub_bump_licensed_quota()"
    )
    op.execute(
        "CREATE TRIGGER quota_version_license_deleted AFTER DELETE ON site_licenses "
        "FOR EACH STATEMENT EXECUTE FUNCTION calchub_bump_licensed_quota()"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name, _, _ in SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER {name}")
    else:
        for name, table in (
            ("quota_version_members", "project_users"),
            ("quota_version_licenses_applied", "projects"),
            ("quota_version_license_terms", "site_licenses"),
            ("quota_version_license_deleted", "site_licenses"),
        ):
            op.execute(f"DROP TRIGGER {name} ON {table}")
        for function in ("member_quota", "licensed_quota", "applied_quota"):
            op.execute(f"DROP FUNCTION calchub_bump_{function}()")
    op.drop_column("projects", "quota_inputs")
    op.drop_column("projects", "quota_version")
