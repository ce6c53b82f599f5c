"""The schema, as SQLAlchemy Core tables.

Identifiers are UUID strings (36 chars) so both backends store and compare them the same way.
Secrets (API keys, auth tokens, reset codes, verification tokens) are never stored: only
their SHA-256 digest, which is enough to look them up and useless to a reader of the database.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

from calchub.db.types import Json, UtcDateTime

# Stable constraint names so Alembic migrations are reproducible on both backends.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

UUID_LEN = 36
DIGEST_LEN = 64  # hex SHA-256


def _project_ref() -> Column[str]:
    """A required, indexed reference to a project; its rows go when the project goes."""
    return Column(
        "project_id",
        String(UUID_LEN),
        ForeignKey("projects.project_id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    )


accounts = Table(
    "accounts",
    metadata,
    Column("account_id", String(UUID_LEN), primary_key=True),
    Column("email_address", String(254), unique=True, nullable=True),
    Column("email_address_before_delete", String(254), nullable=True),
    # {"email": iso-time} of verified addresses, as CoCalc models it.
    Column("email_address_verified", Json, nullable=True),
    # {"email", "token_hash", "time"} of the pending verification.
    Column("email_address_challenge", Json, nullable=True),
    Column("password_hash", String(255), nullable=True),
    Column("first_name", String(254), nullable=True),
    Column("last_name", String(254), nullable=True),
    Column("groups", Json, nullable=False, default=list),
    Column("banned", Boolean, nullable=False, default=False),
    Column("deleted", Boolean, nullable=False, default=False),
    Column("unlisted", Boolean, nullable=False, default=False),
    # {"<strategy>-<id>": profile} of linked single-sign-on identities.
    Column("passports", Json, nullable=True),
    Column("created", UtcDateTime, nullable=False),
    Column("created_by", String(64), nullable=True),
    Column("last_active", UtcDateTime, nullable=True),
    Column("sign_up_usage_intent", Text, nullable=True),
    Column("editor_settings", Json, nullable=True),
    Column("other_settings", Json, nullable=True),
    Index("ix_accounts_created_by_created", "created_by", "created"),
    Index("ix_accounts_last_active", "last_active"),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "account_id",
        String(UUID_LEN),
        ForeignKey("accounts.account_id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("key_hash", String(DIGEST_LEN), nullable=False, unique=True),
    # The first characters of the key, so an owner can tell keys apart without the secret.
    Column("prefix", String(16), nullable=False),
    Column("name", String(200), nullable=False, default=""),
    Column("created", UtcDateTime, nullable=False),
    Column("last_used", UtcDateTime, nullable=True),
)

auth_tokens = Table(
    "auth_tokens",
    metadata,
    Column("token_hash", String(DIGEST_LEN), primary_key=True),
    Column(
        "account_id",
        String(UUID_LEN),
        ForeignKey("accounts.account_id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("created_by", String(UUID_LEN), nullable=True),
    Column("expire", UtcDateTime, nullable=False),
)

# Wrong passwords given to user_auth, per (caller, target): drives the 60 s lock-out.
user_auth_failures = Table(
    "user_auth_failures",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("caller_id", String(UUID_LEN), nullable=False),
    Column("target_id", String(UUID_LEN), nullable=False),
    Column("time", UtcDateTime, nullable=False),
    Index("ix_user_auth_failures_pair", "caller_id", "target_id", "time"),
)

password_reset = Table(
    "password_reset",
    metadata,
    Column("code_hash", String(DIGEST_LEN), primary_key=True),
    Column("email_address", String(254), nullable=False, index=True),
    Column("expire", UtcDateTime, nullable=False),
)

password_reset_attempts = Table(
    "password_reset_attempts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("email_address", String(254), nullable=False),
    Column("ip_address", String(64), nullable=False),
    Column("time", UtcDateTime, nullable=False),
    Index("ix_password_reset_attempts_email_time", "email_address", "time"),
    Index("ix_password_reset_attempts_ip_time", "ip_address", "time"),
)

registration_tokens = Table(
    "registration_tokens",
    metadata,
    Column("token", String(200), primary_key=True),
    Column("descr", Text, nullable=True),
    Column("expires", UtcDateTime, nullable=True),
    Column("limit", Integer, nullable=True),
    Column("counter", Integer, nullable=False, default=0),
    Column("disabled", Boolean, nullable=False, default=False),
)

server_settings = Table(
    "server_settings",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("value", Text, nullable=False),
)

central_log = Table(
    "central_log",
    metadata,
    Column("id", String(UUID_LEN), primary_key=True),
    Column("event", String(100), nullable=False, index=True),
    Column("value", Json, nullable=True),
    Column("time", UtcDateTime, nullable=False, index=True),
)

client_error_log = Table(
    "client_error_log",
    metadata,
    Column("row_id", Integer, primary_key=True, autoincrement=True),
    # The message id the client sent (any JSON value, kept as its JSON text).
    Column("id", Text, nullable=False),
    Column("event", String(100), nullable=False),
    Column("error", Text, nullable=False),
    Column("account_id", String(UUID_LEN), nullable=True, index=True),
    Column("time", UtcDateTime, nullable=False),
    Column("expire", UtcDateTime, nullable=False, index=True),
)

# The latest client telemetry per account (the `metrics` message).
account_metrics = Table(
    "account_metrics",
    metadata,
    Column(
        "account_id",
        String(UUID_LEN),
        ForeignKey("accounts.account_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("metrics", Json, nullable=False),
    Column("time", UtcDateTime, nullable=False),
)

projects = Table(
    "projects",
    metadata,
    Column("project_id", String(UUID_LEN), primary_key=True),
    Column("title", Text, nullable=False, default=""),
    Column("description", Text, nullable=False, default=""),
    Column("compute_image", String(200), nullable=False),
    Column("created", UtcDateTime, nullable=False),
    Column("last_edited", UtcDateTime, nullable=True),
    # {account_id: iso time} of each user's last activity, as CoCalc models it.
    Column("last_active", Json, nullable=True),
    # {license_id: {}} of applied site licenses.
    Column("site_license", Json, nullable=True),
    # Admin-set quota overrides (CoCalc's `settings`).
    Column("settings", Json, nullable=True),
    Column("course", Json, nullable=True),
    Column("invite", Json, nullable=True),
    Column("deleted", Boolean, nullable=False, default=False),
    # The Linux uid the project's processes run as; unique per site.
    Column("uid", Integer, nullable=False, unique=True),
    # Run state as plain columns so that hubs can claim transitions with a conditional UPDATE;
    # exposed as CoCalc's `state` {state, time, error} at the edge.
    Column("run_state", String(16), nullable=False, default="opened"),
    Column("run_state_time", UtcDateTime, nullable=False),
    Column("run_state_error", Text, nullable=True),
    # Last time anything used the project (exec, files, touch): drives the idle timeout.
    Column("last_activity", UtcDateTime, nullable=True),
    # {action, time, started, finished, err} of the last start/stop/restart request.
    Column("action_request", Json, nullable=True),
    # "pending" until a hub claims it, then "running", then "done".
    Column("action_state", String(16), nullable=True),
    Index("ix_projects_run_state_last_activity", "run_state", "last_activity"),
    Index("ix_projects_action_state", "action_state"),
)

project_users = Table(
    "project_users",
    metadata,
    Column(
        "project_id",
        String(UUID_LEN),
        ForeignKey("projects.project_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column(
        "account_id",
        String(UUID_LEN),
        ForeignKey("accounts.account_id", ondelete="CASCADE"),
        primary_key=True,
        index=True,
    ),
    # owner, collaborator, viewer, invited_collaborator, invited_viewer
    Column("group", String(32), nullable=False),
    # {cores, memory, mintime, network, disk_quota, ...} this user applies to the project.
    Column("upgrades", Json, nullable=True),
    Column("hide", Boolean, nullable=False, default=False),
    Column("added", UtcDateTime, nullable=False),
)

# What to do when someone signs up with an address (e.g. join a project they were invited to).
account_creation_actions = Table(
    "account_creation_actions",
    metadata,
    Column("id", String(UUID_LEN), primary_key=True),
    Column("email_address", String(254), nullable=False, index=True),
    # {"action": "add_to_project", "group": "collaborator", "project_id": ...}
    Column("action", Json, nullable=False),
    Column("expire", UtcDateTime, nullable=False),
)

project_invite_tokens = Table(
    "project_invite_tokens",
    metadata,
    Column("token", String(200), primary_key=True),
    _project_ref(),
    Column("created", UtcDateTime, nullable=True),
    Column("expires", UtcDateTime, nullable=True),
    Column("usage_limit", Integer, nullable=True),
    Column("counter", Integer, nullable=False, default=0),
)

# Every copy between projects is a durable row: queued, claimed by one hub, finished or failed.
copy_paths = Table(
    "copy_paths",
    metadata,
    Column("id", String(UUID_LEN), primary_key=True),
    Column("time", UtcDateTime, nullable=False, index=True),
    Column("account_id", String(UUID_LEN), nullable=True),
    Column("source_project_id", String(UUID_LEN), nullable=False, index=True),
    Column("source_path", Text, nullable=False),
    Column("target_project_id", String(UUID_LEN), nullable=False, index=True),
    Column("target_path", Text, nullable=False),
    Column("overwrite_newer", Boolean, nullable=False, default=False),
    Column("delete_missing", Boolean, nullable=False, default=False),
    Column("backup", Boolean, nullable=False, default=False),
    Column("public", Boolean, nullable=False, default=False),
    Column("bwlimit", String(50), nullable=True),
    Column("timeout", Integer, nullable=True),
    Column("exclude", Json, nullable=True),
    Column("scheduled", UtcDateTime, nullable=True),
    Column("started", UtcDateTime, nullable=True),
    Column("finished", UtcDateTime, nullable=True),
    Column("error", Text, nullable=True),
    # Which hub runs it and when it last said so: a copy whose hub died is taken over.
    Column("worker", String(100), nullable=True),
    Column("heartbeat", UtcDateTime, nullable=True),
    # {"files": n, "bytes": n, ...} while running.
    Column("progress", Json, nullable=True),
    Index("ix_copy_paths_pending", "finished", "started", "scheduled"),
)

public_paths = Table(
    "public_paths",
    metadata,
    # Lower-case hex sha1 of project_id + path, as CoCalc computes it.
    Column("id", String(40), primary_key=True),
    _project_ref(),
    Column("path", Text, nullable=False),
    Column("name", String(100), nullable=True),
    Column("description", Text, nullable=True),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("unlisted", Boolean, nullable=False, default=False),
    Column("license", String(100), nullable=True),
    Column("compute_image", String(200), nullable=True),
    Column("created", UtcDateTime, nullable=True),
    Column("last_edited", UtcDateTime, nullable=True),
    Column("last_saved", UtcDateTime, nullable=True),
    Column("counter", Integer, nullable=True),
    Column("vhost", String(200), nullable=True),
    Column("auth", Json, nullable=True),
    Column("token", String(200), nullable=True),
)
