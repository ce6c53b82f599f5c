"""Names (and profiles) of many accounts at once, as CoCalc's `system.getNames` gives them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from calchub.db.tables import accounts
from calchub.errors import Invalid
from calchub.hub import Hub
from calchub.ids import is_valid_uuid

MAX_IDS = 1000


async def names_of(hub: Hub, account_ids: list[str]) -> dict[str, dict[str, Any]]:
    """`{id: {first_name, last_name, profile}}`; both names empty read `No Name`; unknown
    or deleted accounts are `Deleted User` (without a profile)."""
    if len(account_ids) > MAX_IDS:
        raise Invalid(f"at most {MAX_IDS} account ids at once")
    for account_id in account_ids:
        if not isinstance(account_id, str) or not is_valid_uuid(account_id):
            raise Invalid(f"invalid account_id -- {account_id}")
    wanted = {a.lower() for a in account_ids}
    async with hub.engine.connect() as conn:
        rows = await conn.execute(
            select(
                accounts.c.account_id,
                accounts.c.first_name,
                accounts.c.last_name,
                accounts.c.profile,
                accounts.c.deleted,
            ).where(accounts.c.account_id.in_(wanted))
        )
        found = {r.account_id: r for r in rows}
    names: dict[str, dict[str, Any]] = {}
    for account_id in account_ids:
        row = found.get(account_id.lower())
        if row is None or row.deleted:
            names[account_id] = {"first_name": "Deleted", "last_name": "User"}
            continue
        first, last = row.first_name or "", row.last_name or ""
        if not first and not last:
            first, last = "No", "Name"
        names[account_id] = {"first_name": first, "last_name": last, "profile": row.profile}
    return names
