"""`accounts` and the virtual tables over it (spec §3.1-3.4)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from calchub.accounts.creation import has_control_characters
from calchub.db.tables import accounts
from calchub.userquery.context import Caller
from calchub.userquery.errors import QueryError
from calchub.userquery.names import account_name_problem
from calchub.userquery.schema import Rule, Scope, SetContext, TableSpec

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

TERMINAL: dict[str, Any] = {"font_size": 14, "color_scheme": "default", "font": "monospace"}


async def _check_account(ctx: SetContext) -> None:
    """A new account name must follow the rules and be free (case-insensitively); first and
    last names hold no control characters, as at sign-up (PostgreSQL's text holds no NUL)."""
    for field in ("first_name", "last_name"):
        value = ctx.query.get(field)
        if isinstance(value, str) and has_control_characters(value):
            raise QueryError(f"Error: {field} must not contain control characters")
    name = ctx.query.get("name")
    if not name:
        return
    if not isinstance(name, str):
        raise QueryError("Error: name must be a string")
    problem = account_name_problem(name)
    if problem is not None:
        raise QueryError(f"Error: {problem}")
    taken = await ctx.conn.execute(
        select(accounts.c.account_id).where(
            func.lower(accounts.c.name) == name.lower(),
            accounts.c.account_id != ctx.caller.account_id,
        )
    )
    if taken.first() is not None:
        raise QueryError("name is already taken by another organization or account")


async def _no_balance(conn: AsyncConnection, caller: Caller, rows: list[Any]) -> list[Any]:
    return [None for _ in rows]


ACCOUNTS = TableSpec(
    name="accounts",
    storage=accounts,
    primary_key=("account_id",),
    get_fields={
        "account_id": None,
        "email_address": None,
        "lti_id": None,
        "email_address_verified": None,
        "email_address_problem": None,
        "editor_settings": EDITOR_SETTINGS,
        "other_settings": OTHER_SETTINGS,
        "name": None,
        "first_name": "",
        "last_name": "",
        "terminal": TERMINAL,
        "autosave": 45,
        "evaluate_key": "Shift-Enter",
        "font_size": 14,
        "passports": {},
        "groups": [],
        "last_active": None,
        "stripe_customer": None,
        "coupon_history": None,
        "profile": {},
        "ssh_keys": {},
        "created": None,
        "unlisted": False,
        # The organization the account belongs to, if any.
        "org": None,
        # cocalc.com's prepaid balance: nothing is sold here, so there is none. Readable
        # because CoCalc's MCP server asks for it along with the profile.
        "balance": None,
    },
    edges={"balance": _no_balance},
    edge_columns={"balance": ("account_id",)},
    set_fields={
        "account_id": Rule.ACCOUNT_ID,
        "name": Rule.ALLOW,
        "editor_settings": Rule.ALLOW,
        "other_settings": Rule.ALLOW,
        "first_name": Rule.ALLOW,
        "last_name": Rule.ALLOW,
        "terminal": Rule.ALLOW,
        "autosave": Rule.ALLOW,
        "evaluate_key": Rule.ALLOW,
        "font_size": Rule.ALLOW,
        "profile": Rule.ALLOW,
        "ssh_keys": Rule.ALLOW,
        "sign_up_usage_intent": Rule.ALLOW,
        "unlisted": Rule.ALLOW,
    },
    scope=Scope.OWN_ACCOUNT,
    json_fields=frozenset({"editor_settings", "other_settings", "terminal", "profile", "ssh_keys"}),
    truncate={"first_name": 254, "last_name": 254},
    on_set=_check_account,
)

# Anybody's public avatar.
ACCOUNT_PROFILES = TableSpec(
    name="account_profiles",
    storage=accounts,
    primary_key=("account_id",),
    get_fields={"account_id": None, "profile": {}},
    default_options=[{"limit": 1}],
)

_COLLABORATOR_FIELDS: dict[str, Any] = {
    "account_id": None,
    "first_name": "",
    "last_name": "",
    "last_active": None,
    "profile": None,
}

COLLABORATORS = TableSpec(
    name="collaborators",
    storage=accounts,
    primary_key=("account_id",),
    get_fields=_COLLABORATOR_FIELDS,
    scope=Scope.COLLABORATORS,
)

COLLABORATORS_ONE_PROJECT = TableSpec(
    name="collaborators_one_project",
    storage=accounts,
    primary_key=("account_id",),
    get_fields={**_COLLABORATOR_FIELDS, "project_id": None},
    scope=Scope.PROJECT_COLLABORATORS,
    remove_from_query=frozenset({"project_id"}),
)

SPECS = (ACCOUNTS, ACCOUNT_PROFILES, COLLABORATORS, COLLABORATORS_ONE_PROJECT)
