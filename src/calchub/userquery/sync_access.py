"""Who may use a realtime-sync document (spec §3.17): the owners and collaborators of its
project, and admins. Every sync table checks this before it reads or writes a row."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from calchub.access import project_role
from calchub.db.tables import syncstrings
from calchub.ids import is_valid_uuid
from calchub.userquery.access import check_write
from calchub.userquery.context import Caller
from calchub.userquery.errors import QueryError, admin_only

STRING_ID_LENGTH = 40
# A key the query does not have (JavaScript's `undefined` in CoCalc's messages).
ABSENT = object()


def shown(value: Any) -> str:
    """A value as JavaScript writes it into a message (CoCalc's error texts)."""
    if value is ABSENT:
        return "undefined"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "[object Object]"
    if isinstance(value, list):
        return ",".join("" if item is None else shown(item) for item in value)
    return str(value)


async def check_sync_project(conn: AsyncConnection, caller: Caller, query: dict[str, Any]) -> None:
    """The syncstrings check: a valid `project_id` of a project the caller writes to (or an
    admin). The id is left in its stored, lower-case form."""
    project_id = query.get("project_id", ABSENT)
    if not is_valid_uuid(project_id):
        raise QueryError(f"FATAL: project_id (='{shown(project_id)}') must be a valid uuid")
    query["project_id"] = await check_write(conn, caller, project_id)


async def project_of_string(conn: AsyncConnection, string_id: Any) -> str | None:
    """The project of a syncstring, or None when there is no such syncstring."""
    if not isinstance(string_id, str) or len(string_id) != STRING_ID_LENGTH:
        return None
    found = await conn.scalar(
        select(syncstrings.c.project_id).where(syncstrings.c.string_id == string_id)
    )
    return None if found is None else str(found)


async def may_write_project(conn: AsyncConnection, caller: Caller, project_id: str) -> bool:
    return (await project_role(conn, caller.actor, project_id)).may_write


async def check_sync_string(conn: AsyncConnection, caller: Caller, query: dict[str, Any]) -> None:
    """The check of every table keyed by `string_id`: a 40-character id of an existing
    syncstring whose project the caller writes to (or an admin)."""
    string_id = query.get("string_id", ABSENT)
    if not isinstance(string_id, str) or len(string_id) != STRING_ID_LENGTH:
        raise QueryError(
            f"FATAL: string_id (='{shown(string_id)}') must be a string of length "
            f"{STRING_ID_LENGTH}"
        )
    project_id = await project_of_string(conn, string_id)
    if project_id is None:
        raise QueryError("FATAL: no such syncstring")
    if not await may_write_project(conn, caller, project_id):
        raise admin_only()
