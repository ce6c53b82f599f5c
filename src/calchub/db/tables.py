"""The schema, as SQLAlchemy Core tables.

Identifiers are UUID strings (36 chars) so both backends store and compare them the same way.
Secrets (API keys, auth tokens, reset codes, verification tokens) are never stored: only
their SHA-256 digest, which is enough to look them up and useless to a reader of the database.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    func,
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
    # The account's public handle; unique case-insensitively (checked on set).
    Column("name", String(39), nullable=True),
    # The organization the account belongs to (its name; one organization per account).
    Column("org", String(39), nullable=True, index=True),
    Column("terminal", Json, nullable=True),
    Column("autosave", Integer, nullable=True),
    Column("evaluate_key", String(100), nullable=True),
    Column("font_size", Integer, nullable=True),
    # {"image", "color"} shown to other users.
    Column("profile", Json, nullable=True),
    Column("ssh_keys", Json, nullable=True),
    Index("ix_accounts_created_by_created", "created_by", "created"),
    Index("ix_accounts_last_active", "last_active"),
)
# user_search's name prefixes (accounts/search.py), each with the other name, which a search
# for both names checks in the index; on PostgreSQL the migrations build them with COLLATE
# "C" so that prefix ranges compare bytes there as on SQLite.
Index("ix_accounts_name_first", func.lower(accounts.c.first_name), accounts.c.last_name)
Index("ix_accounts_name_last", func.lower(accounts.c.last_name), accounts.c.first_name)
# Newest first, never active last (NULLS LAST on PostgreSQL, SQLite's own order): the order
# of user_search's results; with the columns it filters on and answers with, so that reading
# along it never visits the table (migration 0022).
Index(
    "ix_accounts_recent",
    accounts.c.last_active.desc(),
    accounts.c.created.desc(),
    accounts.c.account_id,
    accounts.c.first_name,
    accounts.c.last_name,
    accounts.c.deleted,
    accounts.c.unlisted,
    postgresql_ops={"last_active": "DESC NULLS LAST"},
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
    # What an owner sees to tell keys apart without the secret: the first characters of a
    # v1 key, or CoCalc's `trunc` (`sk-...<last 6>`) of a current one.
    Column("prefix", String(16), nullable=False),
    Column("name", String(200), nullable=False, default=""),
    Column("created", UtcDateTime, nullable=False),
    Column("last_used", UtcDateTime, nullable=True),
    # The key is refused (and deleted) from this moment on.
    Column("expire", UtcDateTime, nullable=True),
    # A key scoped to one project acts as that project, never as its creator.
    Column(
        "project_id",
        String(UUID_LEN),
        ForeignKey("projects.project_id", ondelete="CASCADE"),
        nullable=True,
        index=True,
    ),
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

# Browser sessions of the web pages: the cookie holds a random token, the row its digest.
# Deleting the row signs that browser out (sign-out, a password change or reset).
web_sessions = Table(
    "web_sessions",
    metadata,
    Column("token_hash", String(DIGEST_LEN), primary_key=True),
    Column(
        "account_id",
        String(UUID_LEN),
        ForeignKey("accounts.account_id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("created", UtcDateTime, nullable=False),
    Column("expire", UtcDateTime, nullable=False, index=True),
    Column("ip_address", String(64), nullable=False),
    # What the sessions page names a session by: random, it tells nothing about the token.
    Column("id", String(24), nullable=False, unique=True, index=True),
)

# Failed (and in-flight) password sign-ins of the web pages, counted per address and per IP.
sign_in_failures = Table(
    "sign_in_failures",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("email_address", String(254), nullable=False),
    Column("ip_address", String(64), nullable=False),
    Column("time", UtcDateTime, nullable=False),
    Index("ix_sign_in_failures_email_time", "email_address", "time"),
    Index("ix_sign_in_failures_ip_time", "ip_address", "time"),
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

# What accounts did when, for the per-account rate limits (e.g. "invitation_email").
account_actions = Table(
    "account_actions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("account_id", String(UUID_LEN), nullable=False),
    Column("action", String(64), nullable=False),
    Column("time", UtcDateTime, nullable=False),
    Index("ix_account_actions_lookup", "account_id", "action", "time"),
)

# Named counters advanced with one atomic UPDATE ... RETURNING, so that hubs sharing the
# database never hand out the same value (e.g. "project_uid").
counters = Table(
    "counters",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", BigInteger, nullable=False),
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
    # A short name, unique (case-insensitively) among the projects of its owner.
    Column("name", String(100), nullable=True),
    # The owner (also in project_users), here so the database can enforce unique names.
    Column("owner_id", String(UUID_LEN), nullable=True),
    # {NAME: value} of extra environment variables.
    Column("env", Json, nullable=True),
    # {account_id: {timestamp, message}} of requests to join.
    Column("invite_requests", Json, nullable=True),
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
    # What the quota takes from other rows (members' upgrades, licenses' terms), computed
    # when needed and kept here with the `quota_version` it was computed at; triggers move
    # the version whenever one of those rows changes (see projects/quota_inputs.py).
    Column("quota_version", Integer, nullable=False, default=0, server_default="0"),
    Column("quota_inputs", Json, nullable=True),
    # Moved by a trigger at every change to a column a get can show, including the
    # quota_version a membership change moves (migration 0026): listings reuse a row the
    # database wrote while its version is the same (userquery/rendered_rows.py).
    Column("row_version", Integer, nullable=False, default=0, server_default="0"),
    Index("ix_projects_run_state_last_activity", "run_state", "last_activity"),
    Index("ix_projects_action_state", "action_state"),
    # The running-projects limit counts an owner's running projects at every start.
    Index("ix_projects_owner_run_state", "owner_id", "run_state"),
    # A listing reads each project's version from the index alone.
    Index("ix_projects_row_versions", "project_id", "row_version"),
)
Index(
    "ix_projects_owner_name",
    projects.c.owner_id,
    func.lower(projects.c.name),
    unique=True,
    sqlite_where=projects.c.name.is_not(None) & (projects.c.name != ""),
    postgresql_where=projects.c.name.is_not(None) & (projects.c.name != ""),
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
    ),
    # owner, collaborator, viewer, invited_collaborator, invited_viewer
    Column("group", String(32), nullable=False),
    # {cores, memory, mintime, network, disk_quota, ...} this user applies to the project.
    Column("upgrades", Json, nullable=True),
    Column("hide", Boolean, nullable=False, default=False),
    Column("added", UtcDateTime, nullable=False),
    # An account's projects by group, read without visiting the table (migration 0023).
    Index("ix_project_users_account_group", "account_id", "group", "project_id"),
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

# What happened in a project, newest first: written by members through `query`.
project_log = Table(
    "project_log",
    metadata,
    Column("id", String(UUID_LEN), primary_key=True),
    _project_ref(),
    Column("time", UtcDateTime, nullable=False, index=True),
    Column("account_id", String(UUID_LEN), nullable=True),
    Column("event", Json, nullable=True),
)

# Who did what to which file of a project: {account_id: {edit|read|seen|chat|open: time}}.
file_use = Table(
    "file_use",
    metadata,
    # Lower-case hex sha1 of project_id + path.
    Column("id", String(40), primary_key=True),
    _project_ref(),
    Column("path", Text, nullable=False),
    Column("users", Json, nullable=True),
    Column("last_edited", UtcDateTime, nullable=True, index=True),
)

# Each time an account opened a file (file_use_times' access_times).
file_access_log = Table(
    "file_access_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    _project_ref(),
    Column("account_id", String(UUID_LEN), nullable=False),
    Column("filename", Text, nullable=False),
    Column("time", UtcDateTime, nullable=False),
    Index("ix_file_access_log_lookup", "project_id", "account_id", "filename", "time"),
)

# @-mentions of an account in a file of a project.
mentions = Table(
    "mentions",
    metadata,
    Column("time", UtcDateTime, primary_key=True),
    Column(
        "project_id",
        String(UUID_LEN),
        ForeignKey("projects.project_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("path", Text, primary_key=True),
    Column("target", String(UUID_LEN), primary_key=True),
    Column("source", String(UUID_LEN), nullable=True),
    Column("priority", Integer, nullable=True),
    Column("description", Text, nullable=True),
    # {account_id: {read, saved}}
    Column("users", Json, nullable=True),
    Index("ix_mentions_project_time", "project_id", "time"),
)

site_licenses = Table(
    "site_licenses",
    metadata,
    Column("id", String(UUID_LEN), primary_key=True),
    Column("title", Text, nullable=True),
    Column("description", Text, nullable=True),
    Column("info", Json, nullable=True),
    Column("expires", UtcDateTime, nullable=True),
    Column("activates", UtcDateTime, nullable=True),
    Column("created", UtcDateTime, nullable=True),
    Column("last_used", UtcDateTime, nullable=True),
    # Account ids (a JSON array) of the license's managers.
    Column("managers", Json, nullable=True),
    Column("restricted", Boolean, nullable=True),
    Column("upgrades", Json, nullable=True),
    Column("quota", Json, nullable=True),
    Column("run_limit", Integer, nullable=True),
    Column("apply_limit", Integer, nullable=True),
)

system_notifications = Table(
    "system_notifications",
    metadata,
    Column("id", String(UUID_LEN), primary_key=True),
    Column("time", UtcDateTime, nullable=True, index=True),
    Column("text", Text, nullable=True),
    Column("priority", String(10), nullable=True),
    Column("done", Boolean, nullable=True),
)

compute_images = Table(
    "compute_images",
    metadata,
    Column("id", String(200), primary_key=True),
    Column("src", Text, nullable=True),
    Column("type", String(100), nullable=True),
    Column("display", Text, nullable=True),
    Column("url", Text, nullable=True),
    Column("desc", Text, nullable=True),
    Column("path", Text, nullable=True),
    Column("disabled", Boolean, nullable=True),
)

whitelabeling = Table(
    "whitelabeling",
    metadata,
    Column("id", String(200), primary_key=True),
    Column("theme", Json, nullable=True),
)

lti = Table(
    "lti",
    metadata,
    Column("iss", String(500), primary_key=True),
    Column("name", Text, nullable=True),
    Column("config", Json, nullable=True),
)


def _string_ref() -> Column[str]:
    """The syncstring a realtime-sync row belongs to; rows go with their syncstring."""
    return Column(
        "string_id",
        String(40),
        ForeignKey("syncstrings.string_id", ondelete="CASCADE"),
        primary_key=True,
    )


# One realtime-synchronised document: sha1(project_id + path).
syncstrings = Table(
    "syncstrings",
    metadata,
    Column("string_id", String(40), primary_key=True),
    _project_ref(),
    Column("path", Text, nullable=True),
    # Account ids of the patch authors; patches.user_id indexes this array.
    Column("users", Json, nullable=True),
    Column("last_snapshot", UtcDateTime, nullable=True),
    Column("snapshot_interval", Integer, nullable=True),
    Column("deleted", Boolean, nullable=True),
    Column("save", Json, nullable=True),
    Column("last_active", UtcDateTime, nullable=True),
    Column("init", Json, nullable=True),
    Column("read_only", Boolean, nullable=True),
    Column("last_file_change", UtcDateTime, nullable=True),
    Column("doctype", Text, nullable=True),
    Column("archived", Text, nullable=True),
    Column("settings", Json, nullable=True),
)

patches = Table(
    "patches",
    metadata,
    _string_ref(),
    Column("time", UtcDateTime, primary_key=True),
    Column("patch", Text, nullable=True),
    Column("user_id", Integer, nullable=True),
    Column("snapshot", Text, nullable=True),
    Column("sent", UtcDateTime, nullable=True),
    Column("prev", UtcDateTime, nullable=True),
    Column("format", Integer, nullable=True),
)

cursors = Table(
    "cursors",
    metadata,
    _string_ref(),
    Column("user_id", Integer, primary_key=True),
    Column("locs", Json, nullable=True),
    Column("time", UtcDateTime, nullable=True),
)

eval_inputs = Table(
    "eval_inputs",
    metadata,
    _string_ref(),
    Column("time", UtcDateTime, primary_key=True),
    Column("user_id", Integer, primary_key=True),
    Column("input", Json, nullable=True),
)

eval_outputs = Table(
    "eval_outputs",
    metadata,
    _string_ref(),
    Column("time", UtcDateTime, primary_key=True),
    Column("number", Integer, primary_key=True),
    Column("output", Json, nullable=True),
)

ipywidgets = Table(
    "ipywidgets",
    metadata,
    _string_ref(),
    Column("model_id", String(200), primary_key=True),
    Column("type", String(100), primary_key=True),
    Column("data", Json, nullable=True),
)

# Requests for help; the site's help address is emailed about each new one.
support_tickets = Table(
    "support_tickets",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    # Whose list the ticket shows in (null: nobody's, as CoCalc's docs describe).
    Column("account_id", String(UUID_LEN), nullable=True),
    # Who opened it, always recorded.
    Column("created_by", String(UUID_LEN), nullable=False, index=True),
    Column("username", Text, nullable=True),
    Column("email_address", String(254), nullable=False),
    Column("subject", Text, nullable=False),
    # The body with the location and course expanded to links.
    Column("description", Text, nullable=False),
    Column("tags", Json, nullable=True),
    Column("location", Text, nullable=True),
    Column("info", Json, nullable=True),
    # open, pending, solved, closed or archived (archived tickets are not listed).
    Column("status", String(16), nullable=False, default="open"),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Index("ix_support_tickets_account_status", "account_id", "status"),
)

# Results of Jupyter executes through the hub, keyed as CoCalc keys them (a SHA-1 of the
# history, input, kernel, project and path), so a repeated request is answered unrun.
jupyter_api_cache = Table(
    "jupyter_api_cache",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("hash", String(40), nullable=False, unique=True),
    Column("output", Json, nullable=False),
    Column("created", UtcDateTime, nullable=False),
    Column("last_active", UtcDateTime, nullable=False),
    Column("expire", UtcDateTime, nullable=False, index=True),
)

# Executes that ran (cache hits are free), for the hourly compute quotas of the global pool.
jupyter_api_log = Table(
    "jupyter_api_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("created", UtcDateTime, nullable=False, index=True),
    Column("account_id", String(UUID_LEN), nullable=True),
    # Who asked when there is no account (an anonymous caller's address).
    Column("client", String(64), nullable=True),
    Column("project_id", String(UUID_LEN), nullable=True),
    Column("hash", String(40), nullable=True),
    Column("kernel", String(200), nullable=True),
    Column("total_time_ms", BigInteger, nullable=False, default=0),
    Index("ix_jupyter_api_log_account_created", "account_id", "created"),
    Index("ix_jupyter_api_log_client_created", "client", "created"),
)


# Organizations: a name (unique with account names), what they say of themselves, their admins.
organizations = Table(
    "organizations",
    metadata,
    Column("organization_id", String(UUID_LEN), primary_key=True),
    Column("name", String(39), nullable=False, unique=True),
    Column("title", Text, nullable=True),
    Column("description", Text, nullable=True),
    Column("link", Text, nullable=True),
    Column("email_address", String(254), nullable=True),
    Column("created", UtcDateTime, nullable=False),
)

# CoCalc keeps admin_account_ids as an array; a row per admin works alike on both backends.
organization_admins = Table(
    "organization_admins",
    metadata,
    Column(
        "organization_id",
        String(UUID_LEN),
        ForeignKey("organizations.organization_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column(
        "account_id",
        String(UUID_LEN),
        ForeignKey("accounts.account_id", ondelete="CASCADE"),
        primary_key=True,
        index=True,
    ),
    Column("added", UtcDateTime, nullable=False),
)

# Messages between accounts. `to_ids` keeps the recipients in the order the sender gave;
# message_recipients holds each recipient's own state, and is what "received" reads.
messages = Table(
    "messages",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "from_id",
        String(UUID_LEN),
        ForeignKey("accounts.account_id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("to_ids", Json, nullable=False),
    Column("subject", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("sent", UtcDateTime, nullable=False),
    Column("thread_id", Integer, nullable=True, index=True),
    Column("sender_read", Boolean, nullable=False, default=False),
    Column("sender_saved", Boolean, nullable=False, default=False),
    Column("sender_deleted", Boolean, nullable=False, default=False),
)

message_recipients = Table(
    "message_recipients",
    metadata,
    Column(
        "message_id",
        Integer,
        ForeignKey("messages.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column(
        "account_id",
        String(UUID_LEN),
        ForeignKey("accounts.account_id", ondelete="CASCADE"),
        primary_key=True,
        index=True,
    ),
    Column("read", Boolean, nullable=False, default=False),
    Column("saved", Boolean, nullable=False, default=False),
    Column("starred", Boolean, nullable=False, default=False),
    Column("deleted", Boolean, nullable=False, default=False),
)


# Asynchronous exec jobs (v2 `exec` with `async_call`): in the database, so that any hub can
# answer a poll; a few per project, for an hour, with bounded output.
exec_jobs = Table(
    "exec_jobs",
    metadata,
    Column("job_id", String(UUID_LEN), primary_key=True),
    Column(
        "project_id",
        String(UUID_LEN),
        ForeignKey("projects.project_id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("command", Text, nullable=False),
    Column("args", Json, nullable=False),
    # running, completed or error
    Column("status", String(16), nullable=False),
    Column("stdout", Text, nullable=False, default=""),
    Column("stderr", Text, nullable=False, default=""),
    Column("exit_code", Integer, nullable=False, default=0),
    Column("start", UtcDateTime, nullable=False),
    Column("finished", UtcDateTime, nullable=True),
    # When a running job counts as lost (its hub stopped): its timeout and some slack.
    Column("deadline", UtcDateTime, nullable=False),
    # The command's pid, once started, where the runtime tells it.
    Column("pid", Integer, nullable=True),
    # Resource samples of its processes (the last 100), where the runtime takes them.
    Column("stats", Json, nullable=True),
)

# Where a running project's agent answers over the network (runtimes whose agents run on
# other machines, such as Slurm): one row per project, replaced by each start and removed when
# it ends. The token is derived from the start's nonce, never stored.
agent_addresses = Table(
    "agent_addresses",
    metadata,
    Column(
        "project_id",
        String(UUID_LEN),
        ForeignKey("projects.project_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("job_id", String(64), nullable=False),
    Column("nonce", String(64), nullable=False),
    Column("host", String(255), nullable=False),
    Column("port", Integer, nullable=False),
    Column("fingerprint", String(128), nullable=False),
    Column("recorded", UtcDateTime, nullable=False),
)
