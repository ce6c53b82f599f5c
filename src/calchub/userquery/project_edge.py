"""A project's `users` map and `state` object, assembled from calchub's columns, and its
`status`, from the runtime."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Text, case, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from calchub.access import GROUPS_THAT_READ
from calchub.db import json_sql
from calchub.db.json_sql import Written, concat, sql_text
from calchub.db.tables import project_users, projects
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


def users_json(dialect: str) -> Written:
    """users_maps's map of each project (the row's `projects.project_id`) as JSON text;
    `{}` when it has no members who may read it, never null."""
    u = project_users.alias("u")
    entry = concat(
        json_sql.string(u.c.account_id, dialect, nullable=False),
        sql_text(':{"group":'),
        json_sql.string(u.c.group, dialect, nullable=False),
        case((u.c.hide, sql_text(',"hide":true')), else_=sql_text("")),
        case(
            (
                json_sql.truthy(u.c.upgrades, dialect),
                concat(sql_text(',"upgrades":'), json_sql.document_text(u.c.upgrades, dialect)),
            ),
            else_=sql_text(""),
        ),
        sql_text("}"),
    )
    readers = [sql_text(group) for group in sorted(GROUPS_THAT_READ)]
    found = (
        select(concat(sql_text("{"), json_sql.joined(entry, dialect), sql_text("}")))
        .where(u.c.project_id == projects.c.project_id, u.c.group.in_(readers))
        .scalar_subquery()
    )
    return Written(func.coalesce(found, sql_text("{}"), type_=Text), nullable=False)


def state_json(dialect: str) -> Written:
    """state_of as JSON text (run_state and its time are never NULL)."""
    error = projects.c.run_state_error
    written = concat(
        sql_text('{"state":'),
        json_sql.string(projects.c.run_state, dialect, nullable=False),
        sql_text(',"time":'),
        func.coalesce(json_sql.timestamp(projects.c.run_state_time, dialect), sql_text("null")),
        case(
            (
                func.coalesce(error, sql_text("")) != sql_text(""),
                concat(sql_text(',"error":'), json_sql.string(error, dialect)),
            ),
            else_=sql_text(""),
        ),
        sql_text("}"),
    )
    return Written(written, nullable=False)


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
