"""Start, stop, touch, delete and ask about a project, as CoCalc's current API (the hub's
`projects.*` methods) does: each call waits for what it asks, and refusals use that API's
words. The decision is calchub.access's rule."""

from __future__ import annotations

from typing import Any

from sqlalchemy import update

from calchub import __version__
from calchub.actor import Actor
from calchub.db.tables import projects
from calchub.db.types import utcnow
from calchub.errors import Invalid, Refused
from calchub.files.listing import list_folder, ordered
from calchub.hub import Hub
from calchub.ids import is_valid_uuid
from calchub.projects.access import project_and_role
from calchub.projects.file_activity import mark_project_used
from calchub.projects.lifecycle import (
    ensure_running,
    note_use_if_running,
    record_activity,
    start_project,
    stop_project,
)
from calchub.projects.runtime_errors import domain_error
from calchub.projects.store import ProjectRow
from calchub.runtime import RuntimeFailure

BAD_ID = "invalid account_id or project_id -- all must be valid uuid's"


async def _member_project(hub: Hub, actor: Actor, project_id: Any, doing: str) -> ProjectRow:
    """The project, when the actor may act on it as a collaborator; the refusal reads
    `must be collaborator on project to <doing>` (the same for a missing project)."""
    if not isinstance(project_id, str) or not is_valid_uuid(project_id):
        raise Invalid(BAD_ID)
    found = await project_and_role(hub, actor, project_id.lower())
    if found is None or not found[1].may_write:
        raise Refused(f"must be collaborator on project to {doing}")
    return found[0]


async def start(hub: Hub, actor: Actor, project_id: Any) -> None:
    """Start the project and return once it runs."""
    project = await _member_project(hub, actor, project_id, "start it")
    try:
        await start_project(hub, project)
    except RuntimeFailure as exc:
        raise domain_error(exc) from None
    await record_activity(hub, project)


async def stop(hub: Hub, actor: Actor, project_id: Any) -> None:
    """Stop the project and return once it has stopped."""
    project = await _member_project(hub, actor, project_id, "stop it")
    try:
        await stop_project(hub, project.project_id)
    except RuntimeFailure as exc:
        raise domain_error(exc) from None


async def touch(hub: Hub, actor: Actor, project_id: Any) -> None:
    """The caller uses the project now: note it, and start the project if it is stopped
    (one the database calls running is only noted, as in touch_project)."""
    project = await _member_project(hub, actor, project_id, "touch it")
    async with hub.engine.begin() as conn:
        if actor.account_id is not None:
            state = await mark_project_used(conn, project.project_id, actor.account_id, actor.now)
            running = state == "running"
        else:
            running = await note_use_if_running(conn, project.project_id, actor.now)
    if not running or hub.runtime.problem:
        await start(hub, actor, project.project_id)


async def state(hub: Hub, actor: Actor, project_id: Any) -> dict[str, Any]:
    project = await _member_project(hub, actor, project_id, "get state")
    found: dict[str, Any] = {"state": project.run_state, "time": project.run_state_time}
    if project.run_state_error:
        found["error"] = project.run_state_error
    return found


async def status(hub: Hub, actor: Actor, project_id: Any) -> dict[str, Any]:
    """What runs in the project: `{}` when it does not run."""
    project = await _member_project(hub, actor, project_id, "get status")
    if project.run_state != "running" or hub.runtime.problem:
        return {}
    try:
        found = await hub.runtime.status(project.project_id)
    except RuntimeFailure:
        return {}
    if not found.running:
        return {}
    described: dict[str, Any] = {"project.pid": found.pid, "version": __version__}
    if found.started_at is not None:
        described["start_ts"] = int(found.started_at.timestamp() * 1000)
    if found.memory_bytes is not None:
        described["memory"] = {"rss": found.memory_bytes // 1024}
    return described


async def delete(hub: Hub, actor: Actor, project_id: Any) -> None:
    """Any collaborator (or an admin) may delete; the refusal says owner, as CoCalc's does.
    The project is stopped first, so nothing keeps running in a deleted project."""
    if not isinstance(project_id, str) or not is_valid_uuid(project_id):
        raise Invalid(BAD_ID)
    found = await project_and_role(hub, actor, project_id.lower())
    if found is None or not found[1].may_write:
        raise Refused("must be an owner to delete a project")
    project = found[0]
    if project.run_state != "opened":
        try:
            await stop_project(hub, project.project_id)
        except RuntimeFailure as exc:
            raise domain_error(exc) from None
    async with hub.engine.begin() as conn:
        await conn.execute(
            update(projects)
            .where(projects.c.project_id == project.project_id)
            .values(deleted=True, last_edited=utcnow())
        )


async def open_for_call(hub: Hub, actor: Actor, project_id: str) -> ProjectRow:
    """Ready the project for a call of its API: the caller (a collaborator's key, or the
    project's own) uses it now, and a stopped project is started first."""
    if not is_valid_uuid(project_id):
        raise Invalid(f"invalid project_id '{project_id}'")
    found = await project_and_role(hub, actor, project_id.lower())
    if found is None or not found[1].may_write:
        raise Refused("user must be a collaborator on the project")
    project = found[0]
    if actor.account_id is not None:
        async with hub.engine.begin() as conn:
            await mark_project_used(conn, project.project_id, actor.account_id, actor.now)
    try:
        await ensure_running(hub, project)
    except RuntimeFailure as exc:
        raise domain_error(exc) from None
    return project


async def list_folder_of(
    hub: Hub, actor: Actor, project_id: str, path: str, hidden: bool
) -> list[dict[str, Any]]:
    """`system.listing`: a folder of the project, HOME-relative, by name."""
    project = await open_for_call(hub, actor, project_id)
    try:
        listing = await list_folder(hub, project, path, hidden)
    except RuntimeFailure as exc:
        raise domain_error(exc) from None
    return [entry.to_json() for entry in ordered(listing.entries, newest_first=False)]
