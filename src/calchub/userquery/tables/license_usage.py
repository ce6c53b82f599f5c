"""The admins' views of site licenses: search and usage (spec §3.15)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select

from calchub.db.tables import projects, site_licenses
from calchub.ids import is_valid_uuid
from calchub.licenses.search import matching_licenses
from calchub.licenses.store import count_projects, running_usage, using
from calchub.userquery.errors import QueryError
from calchub.userquery.output import finish
from calchub.userquery.parse import get_options, parse_limit
from calchub.userquery.project_edge import users_maps
from calchub.userquery.schema import GetContext, TableSpec
from calchub.userquery.tables.licenses import LICENSE_FIELDS, MULTI_ONLY
from calchub.userquery.values import to_datetime

MATCHING_LIMIT = 20
PROJECTS_LIMIT = 1000
# Titles and descriptions are cut to this many characters in usage listings.
TRUNCATE = 80
PROJECT_FIELDS = ("project_id", "title", "description", "users", "last_active", "last_edited")


async def _matching(ctx: GetContext) -> dict[str, Any]:
    if not ctx.query.multi:
        raise QueryError(MULTI_ONLY)
    search = ctx.query.value.get("search")
    if search is None:
        search = ""  # no words: the most recently used licenses
    if not isinstance(search, str):
        raise QueryError("Error: search must be a string")
    limit = get_options(ctx.options).limit or MATCHING_LIMIT
    ids = await matching_licenses(ctx.conn, search, limit)
    return {ctx.spec.name: [{"id": license_id} for license_id in ids]}


MATCHING_SITE_LICENSES = TableSpec(
    name="matching_site_licenses",
    storage=site_licenses,
    primary_key=("id",),
    get_fields={"search": None, **{name: None for name in LICENSE_FIELDS}},
    get_admin=True,
    instead_of_get=_matching,
)


async def _usage_stats(ctx: GetContext) -> dict[str, Any]:
    stats = {**ctx.query.value, "running": await running_usage(ctx.conn), "time": ctx.caller.now}
    return finish(ctx.spec, [stats], ctx.query.multi)


SITE_LICENSE_USAGE_STATS = TableSpec(
    name="site_license_usage_stats",
    storage=site_licenses,
    primary_key=("time",),
    get_fields={"running": None, "time": None},
    get_admin=True,
    instead_of_get=_usage_stats,
)


def _cutoff(query: dict[str, Any]) -> datetime | None:
    value = query.get("cutoff")
    return None if value is None else to_datetime(value)


def _project_value(name: str, value: Any) -> Any:
    if name in ("title", "description") and isinstance(value, str):
        return value[:TRUNCATE]
    return value


async def _projects_using(ctx: GetContext) -> dict[str, Any]:
    q = ctx.query.value
    if not ctx.query.multi:
        raise QueryError("query must be an array (you must request to get multiple values back)")
    if not is_valid_uuid(q.get("license_id")):
        raise QueryError("query must be of the form [{license_id:uuid, ...}]")
    license_id = str(q["license_id"]).lower()
    limit = parse_limit(q["limit"]) if q.get("limit") else PROJECTS_LIMIT
    # Only fields asked for with null are returned, as CoCalc does.
    wanted = [name for name in PROJECT_FIELDS if name in q and q[name] is None]
    rows = list(
        await ctx.conn.execute(
            select(projects)
            .where(using(license_id, _cutoff(q)))
            .order_by(projects.c.last_edited.desc().nulls_last(), projects.c.project_id)
            .limit(limit)
        )
    )
    users: dict[str, dict[str, Any]] = {}
    if "users" in wanted:
        users = await users_maps(ctx.conn, (row.project_id for row in rows))
    found = []
    for row in rows:
        entry = {
            name: users.get(row.project_id, {})
            if name == "users"
            else _project_value(name, getattr(row, name))
            for name in wanted
        }
        entry["license_id"] = q["license_id"]
        found.append(entry)
    return finish(ctx.spec, found, True)


PROJECTS_USING_SITE_LICENSE = TableSpec(
    name="projects_using_site_license",
    storage=projects,
    primary_key=("license_id", "project_id"),
    get_fields={"license_id": None, "cutoff": None, "limit": None}
    | {name: None for name in PROJECT_FIELDS},
    get_admin=True,
    instead_of_get=_projects_using,
)


async def _number_using(ctx: GetContext) -> dict[str, Any]:
    q = ctx.query.value
    if ctx.query.multi:
        raise QueryError("query must NOT be an array (do not request multiple values back)")
    if not is_valid_uuid(q.get("license_id")) or q.get("number") is not None:
        raise QueryError(
            "query must be of the form {license_id:uuid, cutoff?:<date>, count:null...}]"
        )
    condition = using(str(q["license_id"]).lower(), _cutoff(q))
    answer = {**q, "number": await count_projects(ctx.conn, condition)}
    return finish(ctx.spec, [answer], False)


NUMBER_OF_PROJECTS_USING_SITE_LICENSE = TableSpec(
    name="number_of_projects_using_site_license",
    storage=projects,
    primary_key=("license_id", "cutoff"),
    get_fields={"license_id": None, "cutoff": None, "number": None},
    get_admin=True,
    instead_of_get=_number_using,
)

SPECS = (
    MATCHING_SITE_LICENSES,
    SITE_LICENSE_USAGE_STATS,
    PROJECTS_USING_SITE_LICENSE,
    NUMBER_OF_PROJECTS_USING_SITE_LICENSE,
)
