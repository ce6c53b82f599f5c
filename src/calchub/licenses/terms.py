"""Which of a project's applied licenses count, and what each contributes.

A license counts when it has been activated (CoCalc treats a license without an activation
date as not activated yet), has not expired, and its run limit is not reached: fewer other
running projects have it applied than `run_limit` allows (0 or none: no limit)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from calchub.db.tables import projects, site_licenses
from calchub.ids import is_valid_uuid
from calchub.licenses.store import running_with


@dataclass(frozen=True)
class LicenseTerms:
    license_id: str
    # Added like a member's upgrades: memory, cores, disk_quota, mintime, network, ...
    upgrades: dict[str, Any] = field(default_factory=dict)
    # Totals the project gets at least: ram and disk in GB, cpu in cores, always_running.
    quota: dict[str, Any] = field(default_factory=dict)


def in_force(activates: datetime | None, expires: datetime | None, now: datetime) -> bool:
    return activates is not None and activates <= now and (expires is None or expires > now)


@dataclass(frozen=True)
class LicenseStanding:
    """The licenses that count now, and how long that answer holds by itself: until
    `changes_at` (the next activation or expiry among the applied licenses; None: no such
    time), and not at all when `depends_on_others` (a run limit counts other projects)."""

    terms: list[LicenseTerms]
    changes_at: datetime | None
    depends_on_others: bool


async def counting_licenses(
    conn: AsyncConnection, project_id: str, now: datetime
) -> list[LicenseTerms]:
    """The terms of the licenses that count for the project right now, by license id."""
    return (await license_standing(conn, project_id, now)).terms


async def license_standing(
    conn: AsyncConnection, project_id: str, now: datetime
) -> LicenseStanding:
    applied = await conn.scalar(
        select(projects.c.site_license).where(projects.c.project_id == project_id)
    )
    if not isinstance(applied, dict):
        return LicenseStanding([], None, False)
    ids = sorted(str(key).lower() for key in applied if is_valid_uuid(key))
    if not ids:
        return LicenseStanding([], None, False)
    rows = await conn.execute(
        select(site_licenses).where(site_licenses.c.id.in_(ids)).order_by(site_licenses.c.id)
    )
    terms = []
    moments: list[datetime] = []
    depends_on_others = False
    for row in rows:
        moments += [t for t in (row.activates, row.expires) if t is not None and t > now]
        if not in_force(row.activates, row.expires, now):
            continue
        if row.run_limit:
            depends_on_others = True
            if await running_with(conn, row.id, other_than=project_id) >= row.run_limit:
                continue
        terms.append(
            LicenseTerms(
                license_id=row.id,
                upgrades=row.upgrades if isinstance(row.upgrades, dict) else {},
                quota=row.quota if isinstance(row.quota, dict) else {},
            )
        )
    return LicenseStanding(terms, min(moments, default=None), depends_on_others)
