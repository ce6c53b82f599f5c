"""A project's `users` map and `state` object, assembled from calchub's columns, and its
`status`, from the runtime."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from calchub.access import GROUPS_THAT_READ
from calchub.db.tables import project_users
from calchub.licenses.upgrades import account_upgrades
from calchub.runtime.base import RuntimeFailure
from calchub.userquery import users_map
from calchub.userquery.context import Caller

# Beyond this many projects, listing each id in the statement costs more (a new statement to
# compile, and on PostgreSQL to prepare, for every length) than reading the memberships of
# all the member's projects.
MANY_PROJECTS = 50


def user_entry(group: str, hide: bool, upgrades: Any) -> dict[str, Any]:
    """Only present keys appear, as in CoCalc's map."""
    entry: dict[str, Any] = {"group": group}
    if hide:
        entry["hide"] = True
    if upgrades:
        entry["upgrades"] = upgrades
    return entry


async def users_maps(
    conn: AsyncConnection, project_ids: Iterable[str], member: str | None = None
) -> dict[str, dict[str, dict[str, Any]]]:
    """The users map of each project. `member`, an account that likely belongs to most of
    them, lets a long list be read in one small statement (see MANY_PROJECTS)."""
    ids = list(set(project_ids))
    maps: dict[str, dict[str, dict[str, Any]]] = {pid: {} for pid in ids}
    readers = project_users.c.group.in_(GROUPS_THAT_READ)
    if member is not None and len(ids) > MANY_PROJECTS:
        theirs = select(project_users.c.project_id).where(project_users.c.account_id == member)
        rows = await conn.execute(
            select(project_users).where(project_users.c.project_id.in_(theirs), readers)
        )
        found = set()
        for row in rows:
            users = maps.get(row.project_id)
            if users is not None:
                users[row.account_id] = user_entry(row.group, row.hide, row.upgrades)
                found.add(row.project_id)
        ids = [pid for pid in ids if pid not in found]  # not `member`'s, or without readers
    if not ids:
        return maps
    rows = await conn.execute(
        select(project_users).where(project_users.c.project_id.in_(ids), readers)
    )
    for row in rows:
        maps[row.project_id][row.account_id] = user_entry(row.group, row.hide, row.upgrades)
    return maps


def state_of(row: Any) -> dict[str, Any]:
    state: dict[str, Any] = {"state": row.run_state, "time": row.run_state_time}
    if row.run_state_error:
        state["error"] = row.run_state_error
    return state


async def status_edge(conn: AsyncConnection, caller: Caller, rows: list[Any]) -> list[Any]:
    """What the runtime reports about running projects; null for the others."""
    out: list[Any] = []
    for row in rows:
        status: dict[str, Any] | None = None
        if row.run_state == "running" and caller.hub.runtime.problem is None:
            try:
                found = await caller.hub.runtime.status(row.project_id)
            except RuntimeFailure:
                found = None
            if found is not None and found.running:
                status = {"state": "running", "project.pid": found.pid}
                if found.started_at is not None:
                    status["start_ts"] = int(found.started_at.timestamp() * 1000)
                if found.memory_bytes is not None:
                    status["memory"] = {"rss": found.memory_bytes // 1024}
        out.append(status)
    return out


async def apply_users(conn: AsyncConnection, caller: Caller, project_id: str, value: Any) -> None:
    """A set of `users`, turned into membership-row updates (spec §5.3)."""
    entries = users_map.validate(value)
    rows = await conn.execute(select(project_users).where(project_users.c.project_id == project_id))
    members = {
        row.account_id: users_map.Member(row.group, bool(row.hide), dict(row.upgrades or {}))
        for row in rows
    }
    available: dict[str, Any] = {}
    if not caller.is_admin:
        available = (await account_upgrades(conn, caller.account_id)).available
    for account_id, member in users_map.changes(
        entries, members, caller.account_id, caller.is_admin, available
    ).items():
        await conn.execute(
            update(project_users)
            .where(
                project_users.c.project_id == project_id,
                project_users.c.account_id == account_id,
            )
            .values(hide=member.hide, upgrades=member.upgrades or None)
        )
