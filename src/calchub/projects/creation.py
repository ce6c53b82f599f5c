"""Creating a project: its row, its owner, its licenses, and an optional start."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from calchub import limits
from calchub.actor import Actor
from calchub.db.tables import projects
from calchub.errors import DomainError, LimitExceeded, Unavailable
from calchub.hub import Hub
from calchub.projects.lifecycle import start_project
from calchub.projects.store import get_project, insert_project
from calchub.runtime import RuntimeFailure

log = logging.getLogger("calchub.projects")

DEFAULT_IMAGE = "ubuntu2004"


async def create_project(
    hub: Hub,
    actor: Actor,
    *,
    title: str,
    description: str,
    image: str | None = None,
    license: str | None = None,
    start: bool = False,
) -> str:
    """The new project's id. `license` holds comma-separated license ids to apply; with
    `start` the project starts in the background."""
    licenses = [part.strip() for part in (license or "").split(",") if part.strip()]
    owner = actor.caller
    try:
        async with hub.engine.begin() as conn:
            if not actor.is_admin:
                await _check_limits(hub, conn, actor)
            project_id = await insert_project(
                conn,
                owner=owner,
                title=title,
                description=description,
                compute_image=image or DEFAULT_IMAGE,
                site_license={license_id: {} for license_id in licenses} or None,
            )
    except RuntimeError as exc:
        raise Unavailable(f"Failed to create new project '{title}' -- {exc}") from None
    if start:
        start_in_background(hub, project_id)
    return project_id


async def _check_limits(hub: Hub, conn: AsyncConnection, actor: Actor) -> None:
    site = await hub.site.all()
    per_minute = int(site["project_creations_per_minute"])
    await limits.take(
        conn,
        actor.caller,
        "project_creation",
        limit=per_minute,
        window=timedelta(minutes=1),
        now=actor.now,
        refusal=f"too many new projects: at most {per_minute} a minute; try again shortly",
    )
    most = int(site["max_projects_per_account"])
    if most > 0:
        owned = await conn.scalar(
            select(func.count())
            .select_from(projects)
            .where(projects.c.owner_id == actor.caller, projects.c.deleted.is_(False))
        )
        if int(owned or 0) >= most:
            raise LimitExceeded(
                f"you own {most} projects, the most this site allows; delete one first"
            )


def start_in_background(hub: Hub, project_id: str) -> None:
    hub.spawn(_start(hub, project_id), f"start project {project_id}")


async def _start(hub: Hub, project_id: str) -> None:
    async with hub.engine.connect() as conn:
        project = await get_project(conn, project_id)
    if project is not None:
        try:
            await start_project(hub, project)
        except (RuntimeFailure, DomainError) as exc:
            log.warning("could not start project %s: %s", project_id, exc)
