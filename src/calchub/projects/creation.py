"""Creating a project: its row, its owner, its licenses, and an optional start."""

from __future__ import annotations

import logging

from calchub.actor import Actor
from calchub.errors import Unavailable
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
    try:
        project_id = await insert_project(
            hub.engine,
            owner=actor.caller,
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


def start_in_background(hub: Hub, project_id: str) -> None:
    hub.spawn(_start(hub, project_id), f"start project {project_id}")


async def _start(hub: Hub, project_id: str) -> None:
    async with hub.engine.connect() as conn:
        project = await get_project(conn, project_id)
    if project is not None:
        try:
            await start_project(hub, project)
        except RuntimeFailure:
            log.warning("could not start project %s", project_id, exc_info=True)
