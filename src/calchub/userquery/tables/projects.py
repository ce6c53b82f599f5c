"""`projects`, `projects_all` and the virtual tables over projects (spec §3.5-3.6)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from calchub.db.tables import project_users, projects
from calchub.projects.duties import ACTIONS, request_action
from calchub.userquery.context import Caller
from calchub.userquery.errors import QueryError, setting
from calchub.userquery.merge import deep_merge
from calchub.userquery.names import project_name_problem
from calchub.userquery.project_edge import (
    apply_users,
    state_json,
    state_of,
    status_edge,
    users_json,
    users_maps,
)
from calchub.userquery.schema import Rule, Scope, SetContext, TableSpec

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


async def _users(conn: AsyncConnection, caller: Caller, rows: list[Any]) -> list[Any]:
    maps = await users_maps(conn, (row.project_id for row in rows), member=caller.account_id)
    return [maps.get(row.project_id, {}) for row in rows]


async def _state(conn: AsyncConnection, caller: Caller, rows: list[Any]) -> list[Any]:
    return [state_of(row) for row in rows]


async def _check_name(ctx: SetContext, project_id: str) -> None:
    name = ctx.query.get("name")
    if not name or (ctx.old is not None and name == ctx.old.name):
        return
    if not isinstance(name, str):
        raise QueryError("Error: name must be a string")
    problem = project_name_problem(name)
    if problem is not None:
        raise QueryError(f"Error: {problem}")
    owners = select(project_users.c.account_id).where(
        project_users.c.project_id == project_id, project_users.c.group == "owner"
    )
    owner = (await ctx.conn.execute(owners)).scalar()
    if owner != ctx.caller.account_id:
        raise QueryError("Only the owner of the project can currently change the project name.")
    owned = select(project_users.c.project_id).where(
        project_users.c.account_id == owner, project_users.c.group == "owner"
    )
    clash = await ctx.conn.execute(
        select(projects.c.project_id).where(
            projects.c.project_id.in_(owned),
            projects.c.project_id != project_id,
            func.lower(projects.c.name) == name.lower(),
        )
    )
    if clash.first() is not None:
        raise QueryError(
            f"There is already a project with the same owner as this project and name='{name}'."
            "   Names are not case sensitive."
        )


def _action_request(ctx: SetContext, project_id: str, value: Any) -> None:
    """start/stop/restart go to the scheduler once committed; `test` and anything else are
    only recorded (the latter with an error)."""
    if not isinstance(value, dict):
        raise setting("action_request", "action_request must be an object")
    action = value.get("action")
    if action in ACTIONS:
        ctx.values.pop("action_request", None)
        hub = ctx.caller.hub

        async def launch() -> None:
            await request_action(hub, project_id, str(action))

        ctx.after_commit.append(launch)
        return
    merged = deep_merge(None if ctx.old is None else ctx.old.action_request, value)
    if action != "test":
        merged.update(finished=ctx.caller.now.isoformat(), err=f"unknown action '{action}'")
    ctx.values["action_request"] = merged


async def _on_project_set(ctx: SetContext) -> None:
    """Spec §3.5 before_change: the name, then action_request (which skips the users
    check), then users."""
    project_id = ctx.query["project_id"]
    await _check_name(ctx, project_id)
    if ctx.query.get("action_request") is not None:
        _action_request(ctx, project_id, ctx.query["action_request"])
        return
    if ctx.query.get("users") is not None:
        await apply_users(ctx.conn, ctx.caller, project_id, ctx.query["users"])


PROJECTS = TableSpec(
    name="projects",
    storage=projects,
    primary_key=("project_id",),
    get_fields={
        "project_id": None,
        "name": None,
        "title": "",
        "description": "",
        "users": {},
        "invite": None,
        "invite_requests": None,
        "deleted": None,
        "host": None,
        "settings": PROJECT_SETTINGS,
        "site_license": None,
        "status": None,
        "state": None,
        "last_edited": None,
        "last_active": None,
        "action_request": None,
        "course": None,
        "compute_image": "default",
        "created": None,
        "env": None,
    },
    set_fields={
        "project_id": Rule.PROJECT_WRITE,
        "title": Rule.ALLOW,
        "name": Rule.ALLOW,
        "description": Rule.ALLOW,
        "deleted": Rule.ALLOW,
        "invite_requests": Rule.ALLOW,
        "users": Rule.ALLOW,
        "action_request": Rule.ALLOW,
        "compute_image": Rule.ALLOW,
        "course": Rule.ALLOW,
        "site_license": Rule.ALLOW,
        "env": Rule.ALLOW,
        "settings": Rule.ADMIN,
    },
    scope=Scope.MEMBER_PROJECTS,
    json_fields=frozenset(
        {"users", "action_request", "course", "invite_requests", "site_license", "env", "settings"}
    ),
    recent=("last_edited", timedelta(days=21)),
    default_options=[{"limit": 100, "order_by": "-last_edited"}],
    edges={"users": _users, "state": _state, "status": status_edge},
    edge_columns={
        "users": ("project_id",),
        "state": ("run_state", "run_state_time", "run_state_error"),
        "status": ("project_id", "run_state"),
    },
    json_rows=True,
    edge_json={"users": users_json, "state": state_json},
    on_set=_on_project_set,
)

# Same fields and set behaviour; no time window and no default options (spec §2.6).
PROJECTS_ALL = replace(PROJECTS, name="projects_all", recent=None, default_options=[])

# Any project by id, for admins.
PROJECTS_ADMIN = replace(
    PROJECTS,
    name="projects_admin",
    scope=Scope.PROJECT_MEMBER,
    get_admin=True,
    recent=None,
    default_options=[],
    set_fields={},
    on_set=None,
)

PROJECTS_OWNER = TableSpec(
    name="projects_owner",
    storage=projects,
    primary_key=("project_id",),
    set_fields={"project_id": Rule.PROJECT_OWNER, "course": Rule.ALLOW},
    json_fields=frozenset({"course"}),
)


async def _own_invite_request(ctx: SetContext) -> None:
    """Spec §3.6 Recommendation: an existing project, and only the caller's own entry."""
    if ctx.old is None:
        raise QueryError(f"FATAL: unknown project_id '{str(ctx.query['project_id'])[:100]}'")
    requests = ctx.query.get("invite_requests")
    if requests is not None and (
        not isinstance(requests, dict) or set(requests) - {ctx.caller.account_id}
    ):
        raise setting("invite_requests", "you may only request an invitation for yourself")


PROJECT_INVITE_REQUESTS = TableSpec(
    name="project_invite_requests",
    storage=projects,
    primary_key=("project_id",),
    set_fields={"project_id": Rule.ALLOW, "invite_requests": Rule.ALLOW},
    json_fields=frozenset({"invite_requests"}),
    on_set=_own_invite_request,
)

# Schema values `true` (not null): a NULL column comes back as true, as in CoCalc.
PUBLIC_PROJECTS = TableSpec(
    name="public_projects",
    storage=projects,
    primary_key=("project_id",),
    get_fields={"project_id": True, "title": True, "description": True, "name": True},
    scope=Scope.PROJECT_PUBLIC,
)

SPECS = (
    PROJECTS,
    PROJECTS_ALL,
    PROJECTS_ADMIN,
    PROJECTS_OWNER,
    PROJECT_INVITE_REQUESTS,
    PUBLIC_PROJECTS,
)
