"""Tables CoCalc's projects keep up to date themselves (spec §3.12-3.13): `listings`,
`project_status`, `project_info` and `usage_info`. calchub has no project-side writer, so
they are answered from the runtime at the time of the query, or have no rows. Only a project
may set them, which over HTTP is never: every set answers "FATAL: project_id must be
specified"."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from calchub.db.tables import projects
from calchub.files.listing import list_folder
from calchub.hub import Hub
from calchub.projects.store import ProjectRow, get_project
from calchub.runtime import FileFailure, RuntimeFailure
from calchub.userquery.access import check_read
from calchub.userquery.errors import QueryError
from calchub.userquery.output import finish
from calchub.userquery.parse import GetOptions, get_options
from calchub.userquery.project_edge import status_edge
from calchub.userquery.schema import GetContext, Rule, Scope, TableSpec

LISTING_FIELDS: dict[str, Any] = {
    "project_id": None,
    "path": None,
    "time": None,
    "listing": None,
    "missing": None,
    "interest": None,
    "error": None,
    "deleted": None,
}


def _options(ctx: GetContext) -> GetOptions:
    """The caller's options, checked as for any table (these have no default options)."""
    opts = get_options(ctx.options)
    if opts.order_by is not None and opts.order_by not in ctx.spec.get_fields:
        raise QueryError(f"ERROR -- invalid order_by='{opts.order_by}'")
    return opts


async def _readable_project(ctx: GetContext) -> str | None:
    """The 'projects' rule when a project_id is given: members and admins only."""
    project_id = ctx.query.value.get("project_id")
    if not project_id:
        return None
    return await check_read(ctx.conn, ctx.caller, project_id)


def _matches(row: dict[str, Any], query: dict[str, Any]) -> bool:
    """Every other value given in the query must equal the row's (there is nothing else to
    select on: the one row is made for the given project and path)."""
    return all(
        wanted is None or name in ("project_id", "path") or row.get(name) == wanted
        for name, wanted in query.items()
    )


async def _listing_row(hub: Hub, project: ProjectRow, path: str, now: datetime) -> dict[str, Any]:
    """All entries, hidden ones included (clients filter them, as CoCalc's do); a file-system
    error goes into the row's `error`, as a project reports it."""
    row: dict[str, Any] = {"project_id": project.project_id, "path": path, "time": now}
    try:
        listing = await list_folder(hub, project, path, hidden=True)
    except FileFailure as exc:
        row["error"] = str(exc)
        return row
    except RuntimeFailure as exc:
        raise QueryError(str(exc)) from None
    row["listing"] = [entry.to_json() for entry in listing.entries]
    return row


async def _listings(ctx: GetContext) -> dict[str, Any]:
    """One row, listed now, for a given project_id and path; nothing else is stored."""
    opts = _options(ctx)
    query = ctx.query.value
    project_id = await _readable_project(ctx)
    path = query.get("path")
    if project_id is None or not isinstance(path, str) or opts.only_changes or opts.limit == 0:
        return finish(ctx.spec, [], ctx.query.multi)
    project = await get_project(ctx.conn, project_id)
    if project is None:
        return finish(ctx.spec, [], ctx.query.multi)
    # Starting the project may take seconds: hold no transaction open meanwhile.
    await ctx.conn.rollback()
    row = await _listing_row(ctx.caller.hub, project, path, ctx.caller.now)
    rows = [{name: row.get(name) for name in query}] if _matches(row, query) else []
    return finish(ctx.spec, rows, ctx.query.multi)


async def _no_rows(ctx: GetContext) -> dict[str, Any]:
    """Nothing to report, but a project the caller may not read is refused as usual."""
    _options(ctx)
    await _readable_project(ctx)
    return finish(ctx.spec, [], ctx.query.multi)


# Rows come from the runtime, never from storage; `projects` is where these hang off.
LISTINGS = TableSpec(
    name="listings",
    storage=projects,
    primary_key=("project_id", "path"),
    get_fields=LISTING_FIELDS,
    set_fields={name: Rule.ALLOW for name in LISTING_FIELDS} | {"project_id": Rule.PROJECT_CLIENT},
    instead_of_get=_listings,
)

# CoCalc's ephemeral project status, here the runtime's view (as in `projects.status`): a
# row for every project the caller may read, with a null status when it is not running.
PROJECT_STATUS = TableSpec(
    name="project_status",
    storage=projects,
    primary_key=("project_id",),
    get_fields={"project_id": None, "status": None},
    set_fields={"project_id": Rule.PROJECT_CLIENT, "status": Rule.ALLOW},
    scope=Scope.MEMBER_PROJECTS,
    edges={"status": status_edge},
)

PROJECT_INFO = TableSpec(
    name="project_info",
    storage=projects,
    primary_key=("project_id",),
    get_fields={"project_id": None, "info": None},
    set_fields={"project_id": Rule.PROJECT_CLIENT, "info": Rule.ALLOW},
    instead_of_get=_no_rows,
)

USAGE_INFO = TableSpec(
    name="usage_info",
    storage=projects,
    primary_key=("project_id", "path"),
    get_fields={"project_id": None, "path": None, "usage": None},
    set_fields={"project_id": Rule.PROJECT_CLIENT, "path": Rule.ALLOW, "usage": Rule.ALLOW},
    instead_of_get=_no_rows,
)

SPECS = (LISTINGS, PROJECT_STATUS, PROJECT_INFO, USAGE_INFO)
