"""Applying a site license to a project and taking it off again (the `site_license` map)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from calchub.actor import Actor
from calchub.db.tables import projects
from calchub.errors import DomainError, Invalid
from calchub.hub import Hub
from calchub.ids import is_valid_uuid
from calchub.projects.access import check_project_access


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


async def change_project_license(
    hub: Hub, actor: Actor, project_id: str, license_id: str, *, add: bool
) -> None:
    """add_license_to_project / remove_license_from_project, for members who write to it."""
    try:
        project = await check_project_access(hub, actor, project_id)
    except DomainError as exc:
        raise type(exc)(f"must have write access to {project_id} -- {exc}") from None
    # CoCalc stores any text as a key; only a license id can ever mean something there.
    if not is_valid_uuid(license_id):
        raise Invalid(f"invalid license_id -- {license_id}")
    await _change(hub.engine, project.project_id, license_id.lower(), add=add)
