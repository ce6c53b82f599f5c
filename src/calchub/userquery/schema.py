"""The user-query tables as data (spec §3): which fields a caller may read and write, their
defaults, the row scope and the hooks. Only fields calchub stores are listed; anything else
is refused with CoCalc's "not allowed" errors."""

from __future__ import annotations

import copy
import enum
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from sqlalchemy import Table

from calchub.db import tables


class Scope(enum.Enum):
    """Which rows a get may see (spec §2.2, as an enum rather than SQL)."""

    OWN_ACCOUNT = "own_account"  # the caller's own account row
    MEMBER_PROJECTS = "member_projects"  # the 'projects' keyword
    PROJECT_PARAM_PUBLIC = "project_param_public"  # 'project_id' on an anonymous table


class Rule(enum.Enum):
    """How a set treats a field (spec §2.3)."""

    ALLOW = "allow"
    ACCOUNT_ID = "account_id"
    PROJECT_WRITE = "project_write"
    COMPUTED = "computed"


# Fields that are not columns of the storage table: assembled at the edge.
VIRTUAL_FIELDS = frozenset({"users", "state"})


@dataclass(frozen=True)
class TableSpec:
    name: str
    storage: Table
    primary_key: str
    get_fields: dict[str, Any]  # field -> default (None: no default)
    set_fields: dict[str, Rule]  # in the order the rules are applied
    scope: Scope
    json_fields: frozenset[str] = frozenset()
    recent: timedelta | None = None  # last_edited window of `projects`
    default_options: list[dict[str, Any]] = field(default_factory=list)
    # Fields whose text is silently cut to this length on set.
    truncate: dict[str, int] = field(default_factory=dict)

    def default(self, name: str) -> Any:
        return copy.deepcopy(self.get_fields.get(name))


EDITOR_SETTINGS: dict[str, Any] = {
    "strip_trailing_whitespace": False,
    "show_trailing_whitespace": True,
    "line_wrapping": True,
    "line_numbers": True,
    "jupyter_line_numbers": False,
    "smart_indent": True,
    "electric_chars": True,
    "match_brackets": True,
    "auto_close_brackets": True,
    "code_folding": True,
    "match_xml_tags": True,
    "auto_close_xml_tags": True,
    "auto_close_latex": True,
    "spaces_instead_of_tabs": True,
    "multiple_cursors": True,
    "track_revisions": True,
    "extra_button_bar": True,
    "build_on_save": True,
    "first_line_number": 1,
    "indent_unit": 4,
    "tab_size": 4,
    "bindings": "standard",
    "theme": "default",
    "undo_depth": 300,
    "jupyter_classic": False,
    "jupyter_window": False,
    "disable_jupyter_windowing": False,
    "show_exec_warning": True,
    "physical_keyboard": "default",
    "keyboard_variant": "",
    "ask_jupyter_kernel": True,
}

OTHER_SETTINGS: dict[str, Any] = {
    "katex": True,
    "confirm_close": False,
    "mask_files": True,
    "page_size": 500,
    "standby_timeout_m": 5,
    "default_file_sort": "time",
    "new_filenames": "iso",
    "show_global_info2": None,
    "first_steps": True,
    "newsletter": False,
    "time_ago_absolute": False,
    "no_free_warnings": False,
    "allow_mentions": True,
}

PROJECT_SETTINGS: dict[str, Any] = {
    "disk_quota": 3000,
    "cores": 1,
    "cpu_shares": 0,
    "memory": 1000,
    "memory_request": 0,
    "mintime": 1800,
    "network": 0,
    "member_host": 0,
    "ephemeral_state": 0,
    "ephemeral_disk": 0,
    "always_running": 0,
}

ACCOUNTS = TableSpec(
    name="accounts",
    storage=tables.accounts,
    primary_key="account_id",
    get_fields={
        "account_id": None,
        "email_address": None,
        "email_address_verified": None,
        "editor_settings": EDITOR_SETTINGS,
        "other_settings": OTHER_SETTINGS,
        "first_name": "",
        "last_name": "",
        "passports": {},
        "groups": [],
        "last_active": None,
        "created": None,
        "unlisted": False,
    },
    set_fields={
        "account_id": Rule.ACCOUNT_ID,
        "editor_settings": Rule.ALLOW,
        "other_settings": Rule.ALLOW,
        "first_name": Rule.ALLOW,
        "last_name": Rule.ALLOW,
        "sign_up_usage_intent": Rule.ALLOW,
        "unlisted": Rule.ALLOW,
    },
    scope=Scope.OWN_ACCOUNT,
    json_fields=frozenset({"editor_settings", "other_settings"}),
    truncate={"first_name": 254, "last_name": 254},
)

PROJECTS = TableSpec(
    name="projects",
    storage=tables.projects,
    primary_key="project_id",
    get_fields={
        "project_id": None,
        "title": "",
        "description": "",
        "users": {},
        "invite": None,
        "deleted": None,
        "settings": PROJECT_SETTINGS,
        "site_license": None,
        "state": None,
        "last_edited": None,
        "last_active": None,
        "action_request": None,
        "course": None,
        "compute_image": "default",
        "created": None,
    },
    set_fields={
        "project_id": Rule.PROJECT_WRITE,
        "title": Rule.ALLOW,
        "description": Rule.ALLOW,
        "deleted": Rule.ALLOW,
        "users": Rule.ALLOW,
        "action_request": Rule.ALLOW,
        "compute_image": Rule.ALLOW,
        "course": Rule.ALLOW,
    },
    scope=Scope.MEMBER_PROJECTS,
    json_fields=frozenset({"users", "action_request", "course"}),
    recent=timedelta(days=21),
    default_options=[{"limit": 100, "order_by": "-last_edited"}],
)

# Same fields and set behaviour; no time window and no default options (spec §2.6).
PROJECTS_ALL = replace(PROJECTS, name="projects_all", recent=None, default_options=[])

PUBLIC_PATHS = TableSpec(
    name="public_paths",
    storage=tables.public_paths,
    primary_key="id",
    get_fields={
        "id": None,
        "project_id": None,
        "path": None,
        "name": None,
        "description": None,
        "disabled": None,
        "unlisted": None,
        "license": None,
        "last_edited": None,
        "created": None,
        "last_saved": None,
        "counter": None,
        "compute_image": "default",
    },
    set_fields={
        "id": Rule.COMPUTED,
        "project_id": Rule.PROJECT_WRITE,
        "path": Rule.ALLOW,
        "name": Rule.ALLOW,
        "description": Rule.ALLOW,
        "disabled": Rule.ALLOW,
        "unlisted": Rule.ALLOW,
        "license": Rule.ALLOW,
        "last_edited": Rule.ALLOW,
        "created": Rule.ALLOW,
        "compute_image": Rule.ALLOW,
    },
    scope=Scope.PROJECT_PARAM_PUBLIC,
)

TABLES: dict[str, TableSpec] = {
    spec.name: spec for spec in (ACCOUNTS, PROJECTS, PROJECTS_ALL, PUBLIC_PATHS)
}
