"""Member upgrades: what an account has to apply to projects, and the rule for applying it.

In CoCalc an account's upgrades came from its paid subscriptions; calchub has no billing, so
every account's total is zero. What a member applied (an admin may have set some) is summed
over their memberships. A member may raise their own upgrades on a project only within what
they have available; lowering them is always allowed (a course tool zeroes them)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from calchub.actor import Actor
from calchub.db.tables import project_users
from calchub.hub import Hub

Amounts = dict[str, int | float]

# The upgrade fields CoCalc's projects know (its PROJECT_UPGRADES), in a stable order.
UPGRADE_FIELDS = (
    "disk_quota",
    "memory",
    "memory_request",
    "cores",
    "cpu_shares",
    "mintime",
    "network",
    "member_host",
    "always_running",
    "ephemeral_state",
    "ephemeral_disk",
)


@dataclass(frozen=True)
class AvailableUpgrades:
    """`total` the account has, `excess` applied beyond it, `available` still to apply."""

    total: Amounts
    excess: Amounts
    available: Amounts


def amount(value: Any) -> int | float:
    """A stored amount as a number; anything else (null, a stray string) counts as 0."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float):
        return value
    return 0


def total_upgrades(account_id: str) -> Amounts:
    # Upgrades are bought; without a payment backend nobody has any.
    return dict.fromkeys(UPGRADE_FIELDS, 0)


def sum_upgrades(maps: Iterable[Mapping[str, Any] | None]) -> Amounts:
    applied: Amounts = dict.fromkeys(UPGRADE_FIELDS, 0)
    for upgrades in maps:
        for name, value in (upgrades or {}).items():
            if name in applied:
                applied[name] += amount(value)
    return applied


def tally(total: Amounts, applied: Amounts) -> AvailableUpgrades:
    return AvailableUpgrades(
        total=dict(total),
        excess={name: max(0, applied[name] - total[name]) for name in UPGRADE_FIELDS},
        available={name: max(0, total[name] - applied[name]) for name in UPGRADE_FIELDS},
    )


async def account_upgrades(conn: AsyncConnection, account_id: str) -> AvailableUpgrades:
    rows = await conn.execute(
        select(project_users.c.upgrades).where(
            project_users.c.account_id == account_id, project_users.c.upgrades.is_not(None)
        )
    )
    applied = sum_upgrades(row.upgrades for row in rows if isinstance(row.upgrades, dict))
    return tally(total_upgrades(account_id), applied)


async def available_upgrades(hub: Hub, actor: Actor) -> AvailableUpgrades:
    """The caller's upgrades: what they have, what they applied beyond it, what is left."""
    async with hub.engine.connect() as conn:
        return await account_upgrades(conn, actor.caller)


def refusal(
    current: Mapping[str, Any], new: Mapping[str, Any], available: Mapping[str, Any]
) -> str | None:
    """Why a member may not change their upgrades on one project from `current` to `new`,
    or None when every raise fits in what they have available."""
    for name in UPGRADE_FIELDS:
        more = amount(new.get(name)) - amount(current.get(name))
        left = amount(available.get(name))
        if more > 0 and more > left:
            return (
                f"not enough upgrades available: asked for {more:g} more of '{name}', "
                f"but {left:g} available"
            )
    return None
