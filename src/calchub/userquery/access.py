"""The query tables' project checks (spec §2.2, §2.3), worded as CoCalc's query engine words
them. The decision is calchub.access's rule."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from calchub.access import GROUPS_THAT_READ, GROUPS_THAT_WRITE, project_role
from calchub.db.tables import projects
from calchub.ids import is_valid_uuid
from calchub.userquery.context import Caller
from calchub.userquery.errors import QueryError, admin_only


async def check_read(
    conn: AsyncConnection,
    caller: Caller,
    project_id: Any,
    groups: Collection[str] = GROUPS_THAT_READ,
) -> str:
    """The 'project_id' keyword: members or admins only."""
    if not is_valid_uuid(project_id):
        raise QueryError(f"invalid project_id -- {project_id}")
    lowered = str(project_id).lower()
    if not (await project_role(conn, caller.actor, lowered)).grants(groups):
        raise QueryError("FATAL: you do not have read access to this project")
    return lowered


async def check_write(
    conn: AsyncConnection,
    caller: Caller,
    project_id: Any,
    groups: Collection[str] = GROUPS_THAT_WRITE,
) -> str:
    """The 'project_write' rule (or 'project_owner' with GROUPS_THAT_OWN): the project must
    exist and the caller be in one of `groups`, or an admin."""
    unknown = QueryError(f"FATAL: unknown project_id '{str(project_id)[:100]}'")
    if not is_valid_uuid(project_id):
        raise unknown
    lowered = str(project_id).lower()
    found = (
        await conn.execute(select(projects.c.project_id).where(projects.c.project_id == lowered))
    ).first()
    if found is None:
        raise unknown
    if not (await project_role(conn, caller.actor, lowered)).grants(groups):
        raise admin_only()
    return lowered
