"""Project membership look-ups for the scope and write checks (spec §2.2, §2.3)."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from calchub.accounts.store import is_valid_uuid
from calchub.db.tables import project_users, projects
from calchub.projects.store import READ_GROUPS, WRITE_GROUPS
from calchub.userquery.context import Caller
from calchub.userquery.errors import QueryError, admin_only


def member_project_ids(account_id: str, groups: Collection[str] = READ_GROUPS) -> Any:
    """Subquery of the projects whose `users` map has the account (readers included)."""
    return select(project_users.c.project_id).where(
        project_users.c.account_id == account_id, project_users.c.group.in_(groups)
    )


async def group_of(conn: AsyncConnection, project_id: str, account_id: str) -> str | None:
    row = (
        await conn.execute(
            select(project_users.c.group).where(
                project_users.c.project_id == project_id, project_users.c.account_id == account_id
            )
        )
    ).first()
    return None if row is None else str(row.group)


async def check_read(
    conn: AsyncConnection, caller: Caller, project_id: Any, groups: Collection[str] = READ_GROUPS
) -> str:
    """The 'project_id' keyword: members or admins only."""
    if not is_valid_uuid(project_id):
        raise QueryError(f"invalid project_id -- {project_id}")
    project_id = str(project_id).lower()
    if caller.is_admin:
        return project_id
    if await group_of(conn, project_id, caller.account_id) not in groups:
        raise QueryError("FATAL: you do not have read access to this project")
    return project_id


async def check_write(
    conn: AsyncConnection, caller: Caller, project_id: Any, groups: Collection[str] = WRITE_GROUPS
) -> str:
    """The 'project_write' rule (or 'project_owner' with groups=("owner",)): the project must
    exist and the caller be in one of `groups`, or an admin."""
    unknown = QueryError(f"FATAL: unknown project_id '{str(project_id)[:100]}'")
    if not is_valid_uuid(project_id):
        raise unknown
    project_id = str(project_id).lower()
    found = (
        await conn.execute(select(projects.c.project_id).where(projects.c.project_id == project_id))
    ).first()
    if found is None:
        raise unknown
    if not caller.is_admin and (await group_of(conn, project_id, caller.account_id) not in groups):
        raise admin_only()
    return project_id
