"""Applying a site license to a project and taking it off again (the `site_license` map)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from calchub.db.tables import projects


async def _change(engine: AsyncEngine, project_id: str, license_id: str, add: bool) -> None:
    # The row is locked so that two changes to the same map never lose one another.
    async with engine.begin() as conn:
        current: Any = await conn.scalar(
            select(projects.c.site_license)
            .where(projects.c.project_id == project_id)
            .with_for_update()
        )
        licenses = dict(current) if isinstance(current, dict) else {}
        if add:
            # Merged as CoCalc does: an existing entry keeps its value.
            licenses.setdefault(license_id, {})
        elif license_id in licenses:
            del licenses[license_id]
        else:
            return
        await conn.execute(
            update(projects)
            .where(projects.c.project_id == project_id)
            .values(site_license=licenses)
        )


async def add_license(engine: AsyncEngine, project_id: str, license_id: str) -> None:
    await _change(engine, project_id, license_id, add=True)


async def remove_license(engine: AsyncEngine, project_id: str, license_id: str) -> None:
    await _change(engine, project_id, license_id, add=False)
