"""Which project a Jupyter call runs in, and the caller's right to it."""

from __future__ import annotations

from calchub.actor import Actor
from calchub.errors import Invalid, Refused
from calchub.hub import Hub
from calchub.ids import is_valid_uuid
from calchub.projects.access import project_and_role
from calchub.projects.lifecycle import ensure_running
from calchub.projects.runtime_errors import runtime_errors
from calchub.projects.store import ProjectRow
from calchub.runtime import ProjectSpec

NOT_A_COLLABORATOR = "permission denied -- user must be collaborator on project"


async def usable_project(hub: Hub, actor: Actor, project_id: str) -> ProjectRow:
    """The project, when the caller may run code in it (a collaborator, an admin or the
    project's own key). A project that does not exist is refused alike."""
    if not isinstance(project_id, str) or not is_valid_uuid(project_id):
        raise Invalid(f"invalid project_id -- {project_id}")
    found = await project_and_role(hub, actor, project_id.lower())
    if found is None or not found[1].may_write:
        raise Refused(NOT_A_COLLABORATOR)
    return found[0]


async def running(hub: Hub, project: ProjectRow) -> ProjectSpec:
    """The project's spec, started on demand."""
    with runtime_errors():
        return await ensure_running(hub, project)
