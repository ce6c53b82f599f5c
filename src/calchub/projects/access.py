"""Project access for the project operations (exec, files, collaborators, licenses), worded
as CoCalc words these refusals. The decision itself is calchub.access's rule."""

from __future__ import annotations

from calchub.access import Role, role_of
from calchub.actor import Actor
from calchub.db.loop_reads import LoopReadUnavailable
from calchub.errors import Invalid, Refused
from calchub.hub import Hub
from calchub.ids import is_valid_uuid
from calchub.projects.store import ProjectRow, project_with_group, project_with_group_direct


def _who(actor: Actor) -> str:
    return actor.account_id or actor.project_id or "anonymous"


async def project_and_role(
    hub: Hub, actor: Actor, project_id: str
) -> tuple[ProjectRow, Role] | None:
    """The project (not deleted) and the actor's role on it, in one query; None when there
    is no such project. `project_id` must be in its stored, lower-case form."""
    account = actor.account_id if actor.project_id is None else None
    try:
        found = await project_with_group_direct(hub.loop_reads, project_id, account)
    except LoopReadUnavailable:
        async with hub.engine.connect() as conn:
            found = await project_with_group(conn, project_id, account)
    if found is None:
        return None
    project, group = found
    return project, role_of(actor, project.project_id, group)


async def _allowed(hub: Hub, actor: Actor, project_id: str, write: bool) -> ProjectRow | None:
    found = await project_and_role(hub, actor, project_id)
    if found is None:
        return None
    project, role = found
    return project if (role.may_write if write else role.may_read) else None


async def require_project(hub: Hub, actor: Actor, project_id: str, *, write: bool) -> ProjectRow:
    """The get_project(read|write) check of project_exec, the text files and the
    collaborator calls, on every edge; on success it marks the project edited, as CoCalc's
    does (at most every 30 s per project on this hub).

    A project that does not exist gets the same answer as one the caller may not use, so
    strangers learn nothing about which projects exist."""
    if not is_valid_uuid(project_id):
        raise Invalid(
            f"Internal error determining user permission -- invalid project_id -- {project_id}"
        )
    project = await _allowed(hub, actor, project_id.lower(), write)
    if project is None:
        kind = "write" if write else "read"
        raise Refused(f"User {_who(actor)} does not have {kind} access to project {project_id}")
    # Allowed: the project counts as edited now (projects/edits.py; mostly a lookup).
    if hub.edits.due(project.project_id):
        await hub.edits.write(project.project_id)
    return project


async def may_use(hub: Hub, actor: Actor, project_id: str, *, write: bool) -> bool:
    """Whether the actor may read (or write) the project; False for a malformed id."""
    if not is_valid_uuid(project_id):
        return False
    return await _allowed(hub, actor, project_id.lower(), write) is not None


async def check_project_access(hub: Hub, actor: Actor, project_id: str) -> ProjectRow:
    """The shorter check of touch_project, disconnect_from_project and licenses (write)."""
    if not is_valid_uuid(project_id):
        raise Invalid("project_id must be specified and valid")
    project = await _allowed(hub, actor, project_id.lower(), write=True)
    if project is None:
        raise Refused("must have write access")
    return project
