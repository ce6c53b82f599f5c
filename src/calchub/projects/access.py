"""Who may read or write a project, with CoCalc's error strings."""

from __future__ import annotations

from calchub.accounts.store import is_valid_uuid
from calchub.api.call import Call
from calchub.api.errors import HandlerError
from calchub.projects.store import READ_GROUPS, WRITE_GROUPS, ProjectRow, project_with_group


async def _allowed(call: Call, project_id: str, write: bool) -> ProjectRow | None:
    async with call.hub.engine.connect() as conn:
        found = await project_with_group(conn, project_id, call.caller)
    if found is None:
        return None
    project, group = found
    if group in (WRITE_GROUPS if write else READ_GROUPS) or await call.is_admin():
        return project
    return None


async def require_project(call: Call, project_id: str, *, write: bool) -> ProjectRow:
    """The get_project(read|write) check of project_exec and the file endpoints.

    A project that does not exist gets the same answer as one the caller may not use, so
    strangers learn nothing about which projects exist."""
    if not is_valid_uuid(project_id):
        raise HandlerError(
            f"Internal error determining user permission -- invalid project_id -- {project_id}"
        )
    project = await _allowed(call, project_id.lower(), write)
    if project is None:
        kind = "write" if write else "read"
        raise HandlerError(
            f"User {call.caller} does not have {kind} access to project {project_id}"
        )
    return project


async def check_project_access(call: Call, project_id: str) -> ProjectRow:
    """The shorter check of touch_project and disconnect_from_project (write access)."""
    if not is_valid_uuid(project_id):
        raise HandlerError("project_id must be specified and valid")
    project = await _allowed(call, project_id.lower(), write=True)
    if project is None:
        raise HandlerError("must have write access")
    return project
