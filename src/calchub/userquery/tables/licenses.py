"""`site_licenses` and the tables over it for managers and license holders (spec §3.15)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import update

from calchub.db.tables import site_licenses
from calchub.ids import is_valid_uuid
from calchub.licenses.store import (
    applied_to,
    count_projects,
    is_manager,
    license_row,
    managed_by,
    running_with,
)
from calchub.userquery.context import Caller
from calchub.userquery.errors import QueryError
from calchub.userquery.output import finish
from calchub.userquery.schema import GetContext, Rule, SetContext, TableSpec

LICENSE_FIELDS = (
    "id",
    "title",
    "description",
    "info",
    "expires",
    "activates",
    "created",
    "last_used",
    "managers",
    "restricted",
    "upgrades",
    "quota",
    "run_limit",
    "apply_limit",
)
MULTI_ONLY = "Error: only query requesting multiple results is implemented"
BAD_MANAGERS = "Error: managers must be an array of valid uuid's"


def manager_ids(value: Any) -> list[str]:
    """The managers as stored: a list of account ids in lower case."""
    if not isinstance(value, list) or not all(is_valid_uuid(item) for item in value):
        raise QueryError(BAD_MANAGERS)
    return [str(item).lower() for item in value]


def as_dict(row: Any) -> dict[str, Any]:
    return {name: getattr(row, name) for name in LICENSE_FIELDS}


async def _check_managers(ctx: SetContext) -> None:
    if "managers" in ctx.values:
        ctx.values["managers"] = manager_ids(ctx.values["managers"])


SITE_LICENSES = TableSpec(
    name="site_licenses",
    storage=site_licenses,
    primary_key=("id",),
    get_fields={name: None for name in LICENSE_FIELDS},
    set_fields={name: Rule.ALLOW for name in LICENSE_FIELDS},
    get_admin=True,
    set_admin=True,
    json_fields=frozenset({"info", "upgrades", "quota"}),
    default_options=[{"order_by": "-last_used"}, {"limit": 500}],
    uuid_fields=frozenset({"id"}),
    insert_defaults={"created": lambda caller: caller.now},
    on_set=_check_managers,
)


async def _managed_licenses(ctx: GetContext) -> dict[str, Any]:
    """Every column of the caller's licenses, whatever fields were asked for (as CoCalc)."""
    if not ctx.query.multi:
        raise QueryError(MULTI_ONLY)
    rows = await managed_by(ctx.conn, ctx.caller.account_id)
    return finish(ctx.spec, [as_dict(row) for row in rows], True)


def _text(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise QueryError(f"Error: {name} must be a string")
    return value


async def _manager_set(caller: Caller, query: dict[str, Any], deleting: bool) -> None:
    """A manager renames, re-describes or re-staffs a license: a plain update, no merge."""
    license_id = query.get("id")
    if license_id is None:
        raise QueryError("FATAL: query must specify (primary) key 'id'")
    async with caller.hub.engine.begin() as conn:
        if not await is_manager(conn, license_id, caller.account_id):
            raise QueryError("Error: user must be a manager of the license to change it")
        values: dict[str, Any] = {}
        for name in ("title", "description"):
            if query.get(name) is not None:
                values[name] = _text(name, query[name])
        if query.get("managers") is not None:
            values["managers"] = manager_ids(query["managers"])
        if values:
            await conn.execute(
                update(site_licenses).where(site_licenses.c.id == license_id).values(**values)
            )


MANAGER_SITE_LICENSES = TableSpec(
    name="manager_site_licenses",
    storage=site_licenses,
    primary_key=("id",),
    get_fields={name: None for name in LICENSE_FIELDS if name != "restricted"},
    set_fields={name: Rule.ALLOW for name in ("id", "title", "description", "managers")},
    uuid_fields=frozenset({"id"}),
    instead_of_get=_managed_licenses,
    instead_of_set=_manager_set,
)

PUBLIC_INFO_FIELDS = (
    "title",
    "description",
    "expires",
    "activates",
    "upgrades",
    "quota",
    "run_limit",
    "managers",
)


async def _public_info(ctx: GetContext) -> dict[str, Any]:
    """What anybody who knows a license id may learn about it, whatever fields were asked
    for. The managers are listed only to the license's managers and to admins."""
    license_id = ctx.query.value.get("id")
    if ctx.query.multi or not is_valid_uuid(license_id):
        raise QueryError("must be a single object query with id specified")
    license_id = str(license_id).lower()
    row = await license_row(ctx.conn, license_id)
    if row is None:
        raise QueryError(f"Error: no license with id {license_id}")
    info = {name: getattr(row, name) for name in PUBLIC_INFO_FIELDS}
    managing = ctx.caller.account_id in (row.managers or [])
    if not (managing or ctx.caller.is_admin):
        del info["managers"]
    info["running"] = await running_with(ctx.conn, license_id)
    info["applied"] = await count_projects(ctx.conn, applied_to(license_id))
    info["is_manager"] = managing
    return finish(ctx.spec, [info], False)


SITE_LICENSE_PUBLIC_INFO = TableSpec(
    name="site_license_public_info",
    storage=site_licenses,
    primary_key=("id",),
    get_fields={
        "id": None,
        **{name: None for name in PUBLIC_INFO_FIELDS},
        "running": None,
        "applied": None,
        "is_manager": None,
    },
    instead_of_get=_public_info,
)

SPECS = (SITE_LICENSES, MANAGER_SITE_LICENSES, SITE_LICENSE_PUBLIC_INFO)
