"""The realtime-sync tables (spec §3.17): syncstrings and the rows keyed by a syncstring
(patches, cursors, evaluation inputs and outputs, widget state). Only the owners and
collaborators of the syncstring's project, and admins, read or write them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncConnection

from calchub.access import GROUPS_THAT_WRITE
from calchub.db.tables import (
    cursors,
    eval_inputs,
    eval_outputs,
    ipywidgets,
    patches,
    syncstrings,
)
from calchub.ids import is_valid_uuid
from calchub.projects.awaken import awaken_project
from calchub.projects.file_activity import log_file_access
from calchub.userquery.context import Caller
from calchub.userquery.errors import QueryError
from calchub.userquery.json_dates import as_time
from calchub.userquery.schema import Rule, Scope, SetContext, SetHook, TableSpec
from calchub.userquery.sync_access import (
    ABSENT,
    check_sync_project,
    check_sync_string,
    shown,
)
from calchub.userquery.sync_ids import string_id_of

# --- syncstrings ----------------------------------------------------------------------------

SYNCSTRING_FIELDS: dict[str, Any] = {
    "string_id": None,
    "users": None,
    "last_snapshot": None,
    "snapshot_interval": 300,
    "project_id": None,
    "path": None,
    "deleted": None,
    "save": None,
    "last_active": None,
    "init": None,
    "read_only": None,
    "last_file_change": None,
    "doctype": None,
    "archived": None,
    "settings": None,
}


def _authors(value: Any) -> list[str]:
    """`users` is a uuid[] column in CoCalc: an array of account ids, stored lower-case."""
    if not isinstance(value, list):
        raise QueryError(f'error: malformed array literal: "{shown(value)}"')
    for item in value:
        if not is_valid_uuid(item):
            raise QueryError(f'error: invalid input syntax for type uuid: "{shown(item)}"')
    return [str(item).lower() for item in value]


async def _after_syncstring_change(ctx: SetContext) -> None:
    """CoCalc's on_change: someone caring about the document (a new `last_active`) or asking
    for a save wakes the project once the set has committed; a new `last_active` also logs
    that the caller opened the file."""
    if "users" in ctx.values:
        ctx.values["users"] = _authors(ctx.values["users"])
    project_id = str(ctx.query["project_id"])
    last_active = ctx.values.get("last_active")
    active = last_active is not None and (ctx.old is None or ctx.old.last_active != last_active)
    save = ctx.query.get("save")
    save_requested = isinstance(save, dict) and save.get("state") == "requested"
    if active:
        path = ctx.values.get("path", None if ctx.old is None else ctx.old.path)
        if path:
            await log_file_access(ctx.conn, project_id, ctx.caller.account_id, path, ctx.caller.now)
    if active or save_requested:
        hub = ctx.caller.hub

        async def wake() -> None:
            await awaken_project(hub, project_id)

        ctx.after_commit.append(wake)


SYNCSTRINGS = TableSpec(
    name="syncstrings",
    storage=syncstrings,
    primary_key=("string_id",),
    get_fields=SYNCSTRING_FIELDS,
    set_fields={
        "string_id": Rule.COMPUTED,
        "users": Rule.ALLOW,
        "last_snapshot": Rule.ALLOW,
        "snapshot_interval": Rule.ALLOW,
        "project_id": Rule.ALLOW,
        "path": Rule.ALLOW,
        "deleted": Rule.ALLOW,
        "save": Rule.ALLOW,
        "last_active": Rule.ALLOW,
        "init": Rule.ALLOW,
        "read_only": Rule.ALLOW,
        "last_file_change": Rule.ALLOW,
        "doctype": Rule.ALLOW,
        "settings": Rule.ALLOW,
    },
    # The check names the project; the scope repeats it so no row of another project can
    # ever match, whatever the filters.
    scope=Scope.PROJECT_MEMBER,
    read_groups=GROUPS_THAT_WRITE,
    json_fields=frozenset({"save", "init", "settings"}),
    json_dates={"init": frozenset({"time"})},
    computed={"string_id": string_id_of},
    get_computed={"string_id": string_id_of},
    check_get=check_sync_project,
    check_set=check_sync_project,
    on_set=_after_syncstring_change,
)

# --- recent_syncstrings_in_project ------------------------------------------------------------


def _max_age_minutes(value: Any) -> float:
    """`max_age_m`: minutes, as a number or its decimal text."""
    minutes: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        minutes = float(value)
    elif isinstance(value, str):
        try:
            minutes = float(value)
        except ValueError:
            minutes = None
    if minutes is None or minutes != minutes or minutes < 0:  # NaN is no age either
        raise QueryError(f"FATAL: max_age_m (='{shown(value)}') must be a nonnegative number")
    return minutes


def _recently_active(table: Table, caller: Caller, query: dict[str, Any]) -> list[Any]:
    """Syncstrings whose `last_active` is within `max_age_m` minutes of now."""
    minutes = _max_age_minutes(query.get("max_age_m", ABSENT))
    try:
        since = caller.now - timedelta(minutes=minutes)
    except OverflowError:  # an age beyond the calendar: every syncstring ever active
        return [table.c.last_active.is_not(None)]
    return [table.c.last_active >= since]


RECENT_SYNCSTRINGS_IN_PROJECT = TableSpec(
    name="recent_syncstrings_in_project",
    storage=syncstrings,
    primary_key=("string_id",),
    get_fields={
        "project_id": None,
        "max_age_m": None,
        "string_id": None,
        "last_active": None,
        "path": None,
        "deleted": None,
        "doctype": None,
    },
    scope=Scope.PROJECT_MEMBER,
    read_groups=GROUPS_THAT_WRITE,
    remove_from_query=frozenset({"max_age_m"}),
    query_where=_recently_active,
    check_get=check_sync_project,
)

# --- syncstrings_delete -----------------------------------------------------------------------

SYNCSTRINGS_DELETE = TableSpec(
    name="syncstrings_delete",
    storage=syncstrings,
    primary_key=("string_id",),
    set_fields={"string_id": Rule.COMPUTED, "project_id": Rule.ALLOW, "path": Rule.ALLOW},
    set_admin=True,
    delete=True,
    always_delete=True,
    computed={"string_id": string_id_of},
    check_set=check_sync_project,
)

# --- patches ----------------------------------------------------------------------------------

# A patch may not be dated further ahead than this: the client's clock is wrong.
MAX_PATCH_FUTURE = timedelta(minutes=3)


async def _check_patch(conn: AsyncConnection, caller: Caller, query: dict[str, Any]) -> None:
    """Refuse patches from the future (CoCalc's exact text `clock`, which its clients look
    for), then the syncstring check."""
    time = as_time(query.get("time"))
    if time is not None and time - caller.now > MAX_PATCH_FUTURE:
        raise QueryError("clock")
    await check_sync_string(conn, caller, query)


async def _keep_patch(ctx: SetContext) -> None:
    """A stored patch keeps its author and its content (CoCalc's before_change)."""
    if ctx.old is None:
        return
    author = ctx.values.get("user_id")
    if ctx.old.user_id is not None and author is not None and ctx.old.user_id != author:
        raise QueryError(
            f"you may not change the author of a patch from {ctx.old.user_id} to {author}"
        )
    patch = ctx.values.get("patch")
    if ctx.old.patch is not None and patch is not None and ctx.old.patch != patch:
        raise QueryError("you may not change a patch")


PATCHES = TableSpec(
    name="patches",
    storage=patches,
    primary_key=("string_id", "time"),
    get_fields={
        "string_id": None,
        "time": None,
        "patch": None,
        "user_id": None,
        "snapshot": None,
        "sent": None,
        "prev": None,
        "format": None,
    },
    set_fields={
        "string_id": Rule.ALLOW,
        "time": Rule.ALLOW,
        "patch": Rule.ALLOW,
        "user_id": Rule.ALLOW,
        "snapshot": Rule.ALLOW,
        "sent": Rule.ALLOW,
        "prev": Rule.ALLOW,
        "format": Rule.ALLOW,
    },
    check_get=check_sync_string,
    check_set=_check_patch,
    on_set=_keep_patch,
)

# --- cursors, eval_inputs, eval_outputs, ipywidgets -------------------------------------------


def _nonnegative(table: str, field: str) -> SetHook:
    """CoCalc's `CHECK (<field> >= 0)`, with PostgreSQL's text."""

    async def check(ctx: SetContext) -> None:
        value = ctx.values.get(field)
        if isinstance(value, int) and value < 0:
            raise QueryError(
                f'error: new row for relation "{table}" violates check constraint '
                f'"{table}_{field}_check"'
            )

    return check


async def _check_cursor(ctx: SetContext) -> None:
    await _nonnegative("cursors", "user_id")(ctx)
    locs = ctx.values.get("locs")
    if locs is not None and not isinstance(locs, list):
        raise QueryError(f'error: malformed array literal: "{shown(locs)}"')


CURSORS = TableSpec(
    name="cursors",
    storage=cursors,
    primary_key=("string_id", "user_id"),
    get_fields={"string_id": None, "user_id": None, "locs": None, "time": None},
    set_fields={
        "string_id": Rule.ALLOW,
        "user_id": Rule.ALLOW,
        "locs": Rule.ALLOW,
        "time": Rule.ALLOW,
    },
    check_get=check_sync_string,
    check_set=check_sync_string,
    on_set=_check_cursor,
)

EVAL_INPUTS = TableSpec(
    name="eval_inputs",
    storage=eval_inputs,
    primary_key=("string_id", "time", "user_id"),
    get_fields={"string_id": None, "time": None, "user_id": None, "input": None},
    set_fields={
        "string_id": Rule.ALLOW,
        "time": Rule.ALLOW,
        "user_id": Rule.ALLOW,
        "input": Rule.ALLOW,
    },
    json_fields=frozenset({"input"}),
    check_get=check_sync_string,
    check_set=check_sync_string,
    on_set=_nonnegative("eval_inputs", "user_id"),
)

EVAL_OUTPUTS = TableSpec(
    name="eval_outputs",
    storage=eval_outputs,
    primary_key=("string_id", "time", "number"),
    get_fields={"string_id": None, "time": None, "number": None, "output": None},
    set_fields={
        "string_id": Rule.ALLOW,
        "time": Rule.ALLOW,
        "number": Rule.ALLOW,
        "output": Rule.ALLOW,
    },
    json_fields=frozenset({"output"}),
    check_get=check_sync_string,
    check_set=check_sync_string,
    on_set=_nonnegative("eval_outputs", "number"),
)

IPYWIDGETS = TableSpec(
    name="ipywidgets",
    storage=ipywidgets,
    primary_key=("string_id", "model_id", "type"),
    get_fields={"string_id": None, "model_id": None, "type": None, "data": None},
    set_fields={
        "string_id": Rule.ALLOW,
        "model_id": Rule.ALLOW,
        "type": Rule.ALLOW,
        "data": Rule.ALLOW,
    },
    json_fields=frozenset({"data"}),
    check_get=check_sync_string,
    check_set=check_sync_string,
)

SPECS = (
    SYNCSTRINGS,
    RECENT_SYNCSTRINGS_IN_PROJECT,
    SYNCSTRINGS_DELETE,
    PATCHES,
    CURSORS,
    EVAL_INPUTS,
    EVAL_OUTPUTS,
    IPYWIDGETS,
)
