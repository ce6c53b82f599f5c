"""Reading site licenses and counting the projects that use them.

A project "has a license applied" when its `site_license` map has the license id as a key;
it "runs with" the license when, in addition, its run state is `running`."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from calchub.db.json_ops import json_array_contains, json_has_key
from calchub.db.tables import projects, site_licenses

RUNNING = "running"


async def license_row(conn: AsyncConnection, license_id: str) -> Any:
    return (
        await conn.execute(select(site_licenses).where(site_licenses.c.id == license_id))
    ).first()


def applied_to(license_id: str) -> Any:
    """Condition on `projects`: the license is applied."""
    return json_has_key(projects.c.site_license, license_id)


def using(license_id: str, cutoff: datetime | None = None) -> Any:
    """Condition on `projects`: running with the license now or, given a cutoff, also used
    since then (calchub keeps no per-license run log: a project's last activity stands in)."""
    running = projects.c.run_state == RUNNING
    if cutoff is not None:
        running = or_(running, projects.c.last_activity >= cutoff)
    return applied_to(license_id) & running


async def count_projects(conn: AsyncConnection, condition: Any) -> int:
    count = await conn.scalar(select(func.count()).select_from(projects).where(condition))
    return int(count or 0)


async def running_with(
    conn: AsyncConnection, license_id: str, *, other_than: str | None = None
) -> int:
    """Running projects with the license applied (optionally leaving one project out)."""
    condition = using(license_id)
    if other_than is not None:
        condition = condition & (projects.c.project_id != other_than)
    return await count_projects(conn, condition)


async def running_usage(conn: AsyncConnection) -> dict[str, int]:
    """license id -> number of running projects that have it applied."""
    rows = await conn.execute(
        select(projects.c.site_license).where(
            projects.c.run_state == RUNNING, projects.c.site_license.is_not(None)
        )
    )
    usage: Counter[str] = Counter()
    for (site_license,) in rows:
        if isinstance(site_license, dict):
            usage.update(site_license.keys())
    return dict(usage)


async def managed_by(conn: AsyncConnection, account_id: str) -> list[Any]:
    """Every license the account manages."""
    rows = await conn.execute(
        select(site_licenses)
        .where(json_array_contains(site_licenses.c.managers, account_id))
        .order_by(site_licenses.c.created.desc().nulls_last(), site_licenses.c.id)
    )
    return list(rows)


async def is_manager(conn: AsyncConnection, license_id: str, account_id: str) -> bool:
    found = await conn.execute(
        select(site_licenses.c.id).where(
            site_licenses.c.id == license_id,
            json_array_contains(site_licenses.c.managers, account_id),
        )
    )
    return found.first() is not None
