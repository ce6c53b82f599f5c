"""`public_paths` and the tables over it (spec §3.8)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, func, select

from calchub.access import member_projects
from calchub.db.tables import project_users, projects, public_paths
from calchub.userquery.context import Caller
from calchub.userquery.errors import QueryError, setting
from calchub.userquery.names import public_path_name_problem
from calchub.userquery.output import finish
from calchub.userquery.schema import GetContext, Rule, Scope, SetContext, TableSpec
from calchub.userquery.sync_ids import sha1_of


def path_id(query: dict[str, Any], caller: Caller) -> str:
    """sha1(project_id + path), as CoCalc computes the id (a client-sent id is ignored)."""
    project_id, path = query.get("project_id"), query.get("path")
    if not isinstance(project_id, str) or not isinstance(path, str):
        raise setting("id", "project_id and path must be strings")
    return sha1_of(project_id, path)


def _visible(table: Table, caller: Caller) -> list[Any]:
    """Withdrawn (disabled) paths only for the project's members and admins: their names and
    descriptions are no longer meant to be public."""
    if caller.is_admin:
        return []
    return [
        table.c.disabled.is_(False) | table.c.project_id.in_(member_projects(caller.account_id))
    ]


async def _check_name(ctx: SetContext) -> None:
    name = ctx.query.get("name")
    if not name:
        return
    problem = public_path_name_problem(name) if isinstance(name, str) else "name must be a string"
    if problem is not None:
        raise QueryError(f"Error: {problem}")
    # Unique within the project (CoCalc checks across all projects: a bug).
    clash = await ctx.conn.execute(
        select(public_paths.c.id).where(
            public_paths.c.project_id == ctx.query["project_id"],
            public_paths.c.path != ctx.query.get("path"),
            func.lower(public_paths.c.name) == name.lower(),
        )
    )
    if clash.first() is not None:
        raise QueryError(
            "There is already a public path in this project with the same name.  "
            "Names are not case sensitive."
        )


PUBLIC_PATH_FIELDS: dict[str, Any] = {
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
}

PUBLIC_PATHS = TableSpec(
    name="public_paths",
    storage=public_paths,
    primary_key=("id",),
    get_fields=PUBLIC_PATH_FIELDS,
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
    scope=Scope.PROJECT_ANY,
    where=_visible,
    computed={"id": path_id},
    on_set=_check_name,
)


async def _check_sha1(conn: Any, caller: Caller, query: dict[str, Any]) -> None:
    value = query.get("id")
    if not isinstance(value, str) or len(value) != 40:
        raise QueryError("id must be a sha1 hash")


PUBLIC_PATHS_BY_ID = TableSpec(
    name="public_paths_by_id",
    storage=public_paths,
    primary_key=("id",),
    get_fields={name: None for name in PUBLIC_PATH_FIELDS},
    where=_visible,
    check_get=_check_sha1,
)

_ALL_FIELDS = [name for name in PUBLIC_PATH_FIELDS if name != "name"]


async def _all_public_paths(ctx: GetContext) -> dict[str, Any]:
    """Every public path of the projects the caller has been active in, newest first,
    whatever fields were asked for (spec §3.8)."""
    caller = ctx.caller.account_id
    stmt = (
        select(public_paths, projects.c.last_active.label("project_last_active"))
        .join(projects, projects.c.project_id == public_paths.c.project_id)
        .join(
            project_users,
            (project_users.c.project_id == public_paths.c.project_id)
            & (project_users.c.account_id == caller),
        )
        .order_by(public_paths.c.last_edited.desc().nulls_first())
    )
    rows = [
        row
        for row in await ctx.conn.execute(stmt)
        if isinstance(row.project_last_active, dict) and caller in row.project_last_active
    ]
    return finish(
        ctx.spec, [{name: getattr(row, name) for name in _ALL_FIELDS} for row in rows], True
    )


ALL_PUBLIC_PATHS = TableSpec(
    name="all_public_paths",
    storage=public_paths,
    primary_key=("id",),
    get_fields={name: None for name in _ALL_FIELDS},
    instead_of_get=_all_public_paths,
)

SPECS = (PUBLIC_PATHS, PUBLIC_PATHS_BY_ID, ALL_PUBLIC_PATHS)
