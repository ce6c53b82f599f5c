"""`file_use` (who did what to which file, spec §3.10) and `file_use_times` (when a file was
opened and edited, spec §3.11)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from calchub.access import project_role
from calchub.db.tables import file_access_log, file_use, patches
from calchub.ids import is_valid_uuid
from calchub.projects.file_activity import log_file_access, mark_project_used
from calchub.userquery.context import Caller
from calchub.userquery.errors import QueryError
from calchub.userquery.json_dates import as_time
from calchub.userquery.parse import parse_limit
from calchub.userquery.schema import GetContext, Rule, Scope, SetContext, TableSpec
from calchub.userquery.sync_ids import sha1_of
from calchub.userquery.values import to_column, to_uuid

# --- file_use -------------------------------------------------------------------------------

# An edit, chat or open this recent means the caller is working in the project right now.
RECENT_USE = timedelta(minutes=3)
_WORKING_ACTIONS = ("edit", "chat", "open")


def _file_use_id(query: dict[str, Any], caller: Caller) -> str:
    if query.get("path") is None:
        raise QueryError("FATAL: must specify file_use.path")
    return sha1_of(query.get("project_id"), query.get("path"))


def working_now(entry: Any, now: datetime) -> bool:
    """Whether an account's file_use entry has an edit, chat or open within the last three
    minutes. CoCalc compares the JSON strings with a date, which is never true; calchub
    reads ISO strings, ms numbers and `{now}` as the times they are."""
    if not isinstance(entry, dict):
        return False
    for action in _WORKING_ACTIONS:
        when = as_time(entry.get(action))
        if when is not None and when >= now - RECENT_USE:
            return True
    return False


async def _note_working(ctx: SetContext) -> None:
    """CoCalc's check hook: the caller's own recent edit, chat or open touches the project
    and logs the file access."""
    users = ctx.query.get("users")
    if not isinstance(users, dict):
        return
    caller = ctx.caller
    if not working_now(users.get(caller.account_id), caller.now):
        return
    project_id = str(ctx.query["project_id"])
    await mark_project_used(ctx.conn, project_id, caller.account_id, caller.now)
    await log_file_access(ctx.conn, project_id, caller.account_id, ctx.values["path"], caller.now)


FILE_USE = TableSpec(
    name="file_use",
    storage=file_use,
    primary_key=("id",),
    get_fields={"id": None, "project_id": None, "path": None, "users": None, "last_edited": None},
    set_fields={
        "id": Rule.COMPUTED,
        "project_id": Rule.PROJECT_WRITE,
        "path": Rule.ALLOW,
        "users": Rule.ALLOW,
        "last_edited": Rule.ALLOW,
    },
    scope=Scope.MEMBER_PROJECTS,
    recent=("last_edited", timedelta(days=21)),
    default_options=[{"order_by": "-last_edited"}, {"limit": 200}],
    json_fields=frozenset({"users"}),
    json_dates={"users": None},
    computed={"id": _file_use_id},
    on_set=_note_working,
)

# --- file_use_times -------------------------------------------------------------------------

MAX_TIMES = 1000


def _ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


def _times_limit(options: list[dict[str, Any]]) -> int:
    """Only the first options entry's `limit` counts (as in CoCalc), at most 1000."""
    first = options[0] if options else {}
    if not isinstance(first, dict) or first.get("limit") is None:
        return MAX_TIMES
    return min(parse_limit(first["limit"]), MAX_TIMES)


async def _file_use_times(ctx: GetContext) -> dict[str, Any]:
    """The access and edit times of one file for one account, newest first, as ms since the
    epoch."""
    query = dict(ctx.query.value)
    project_id, account_id, path = (query.get(k) for k in ("project_id", "account_id", "path"))
    if project_id is None or account_id is None or path is None:
        raise QueryError("project_id, account_id, and path must all be specified")
    allowed = (
        is_valid_uuid(project_id)
        and (await project_role(ctx.conn, ctx.caller.actor, str(project_id).lower())).may_write
    )
    if not allowed:
        raise QueryError("Error: user does not have read access to the given project")
    project_id = str(project_id).lower()
    account_id = to_uuid(account_id)
    filename = to_column(file_access_log.c.filename, path)
    limit = _times_limit(ctx.options)
    if "access_times" in query and query["access_times"] is None:
        opened = await ctx.conn.scalars(
            select(file_access_log.c.time)
            .where(
                file_access_log.c.project_id == project_id,
                file_access_log.c.account_id == account_id,
                file_access_log.c.filename == filename,
            )
            .order_by(file_access_log.c.time.desc())
            .limit(limit)
        )
        query["access_times"] = [_ms(time) for time in opened]
    if "edit_times" in query and query["edit_times"] is None:
        edited = await ctx.conn.scalars(
            select(patches.c.time)
            .where(patches.c.string_id == sha1_of(project_id, filename))
            .order_by(patches.c.time.desc())
            .limit(limit)
        )
        query["edit_times"] = [_ms(time) for time in edited]
    return {ctx.spec.name: [query] if ctx.query.multi else query}


FILE_USE_TIMES = TableSpec(
    name="file_use_times",
    storage=file_access_log,
    primary_key=("project_id", "account_id", "path"),
    get_fields={
        "project_id": None,
        "account_id": None,
        "path": None,
        "access_times": None,
        "edit_times": None,
    },
    instead_of_get=_file_use_times,
)

SPECS = (FILE_USE, FILE_USE_TIMES)
