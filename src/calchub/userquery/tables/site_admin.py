"""Site-wide tables (spec §3.16): notifications, whitelabeling themes, LTI configurations,
compute images and the browser's entries in the central log."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from calchub.db.tables import central_log, compute_images, lti, system_notifications, whitelabeling
from calchub.userquery.context import Caller
from calchub.userquery.errors import QueryError, setting
from calchub.userquery.schema import Rule, SetContext, TableSpec

PRIORITIES = ("low", "medium", "high")


async def _check_priority(ctx: SetContext) -> None:
    priority = ctx.values.get("priority")
    if priority is not None and priority not in PRIORITIES:
        raise setting("priority", f"priority must be one of {', '.join(PRIORITIES)}")


_NOTIFICATION_FIELDS = ("id", "time", "text", "priority", "done")

# Shown to everybody for an hour after their time; written by admins.
SYSTEM_NOTIFICATIONS = TableSpec(
    name="system_notifications",
    storage=system_notifications,
    primary_key=("id",),
    get_fields={"id": None, "time": None, "text": "", "priority": "low", "done": False},
    set_fields={name: Rule.ALLOW for name in _NOTIFICATION_FIELDS},
    set_admin=True,
    recent=("time", timedelta(hours=1)),
    uuid_fields=frozenset({"id"}),
    # Without a time a notification would never be shown.
    insert_defaults={"time": lambda caller: caller.now},
    on_set=_check_priority,
)

# The site settings a whitelabeled subdomain may override (CoCalc's ThemeKeys).
THEME_KEYS = (
    "site_name",
    "site_description",
    "dns",
    "account_creation_email_instructions",
    "help_email",
    "logo_square",
    "logo_rectangular",
    "splash_image",
    "index_info_html",
    "organization_name",
    "organization_email",
    "organization_url",
)


def _check_theme(theme: Any) -> None:
    """CoCalc means to allow only THEME_KEYS (its check iterates array indices instead, so it
    refuses every theme); values are texts, or null to remove a key."""
    if not isinstance(theme, dict):
        return  # a non-object is refused as any map field is
    for key, value in theme.items():
        if key not in THEME_KEYS:
            raise QueryError(f'Unknown key in theme: "{key}"')
        if value is not None and not isinstance(value, str):
            raise QueryError(f'Error: the value of "{key}" in theme must be a string')


async def _theme_on_get(conn: AsyncConnection, caller: Caller, query: dict[str, Any]) -> None:
    _check_theme(query.get("theme"))


async def _theme_on_set(ctx: SetContext) -> None:
    _check_theme(ctx.query.get("theme"))


WHITELABELING = TableSpec(
    name="whitelabeling",
    storage=whitelabeling,
    primary_key=("id",),
    get_fields={"id": None, "theme": None},
    set_fields={"id": Rule.ALLOW, "theme": Rule.ALLOW},
    get_admin=True,
    set_admin=True,
    json_fields=frozenset({"theme"}),
    check_get=_theme_on_get,
    on_set=_theme_on_set,
)


async def _no_lti_reads(conn: AsyncConnection, caller: Caller, query: dict[str, Any]) -> None:
    # CoCalc's lti table has get fields but no row filter, so every read is refused.
    raise QueryError(
        "FATAL: user get query not allowed for lti (no getAll filter - pg_where or check_hook)"
    )


LTI = TableSpec(
    name="lti",
    storage=lti,
    primary_key=("iss",),
    get_fields={"iss": None, "name": None, "config": None},
    set_fields={"iss": Rule.ALLOW, "name": Rule.ALLOW, "config": Rule.ALLOW},
    get_admin=True,
    set_admin=True,
    json_fields=frozenset({"config"}),
    check_get=_no_lti_reads,
)

COMPUTE_IMAGES = TableSpec(
    name="compute_images",
    storage=compute_images,
    primary_key=("id",),
    get_fields={
        name: None for name in ("id", "src", "type", "display", "url", "desc", "path", "disabled")
    },
)


async def _check_log_entry(ctx: SetContext) -> None:
    """Only the browser's own events, and only new entries: the log is a record, and CoCalc's
    upsert would let anybody rewrite the server's entries."""
    event = ctx.query.get("event")
    if not isinstance(event, str) or not event.startswith("webapp-"):
        raise QueryError("event must start with 'webapp-'")
    if ctx.old is not None:
        raise QueryError(f"FATAL: central_log entry '{ctx.query['id']}' already exists")


CENTRAL_LOG = TableSpec(
    name="central_log",
    storage=central_log,
    primary_key=("id",),
    set_fields={name: Rule.ALLOW for name in ("id", "event", "value", "time")},
    json_fields=frozenset({"value"}),
    uuid_fields=frozenset({"id"}),
    insert_defaults={"time": lambda caller: caller.now},
    on_set=_check_log_entry,
)

SPECS = (SYSTEM_NOTIFICATIONS, WHITELABELING, LTI, COMPUTE_IMAGES, CENTRAL_LOG)
