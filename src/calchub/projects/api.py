"""Handlers for project creation, touch/disconnect, project_exec and text files."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select, update

from calchub.api import messages as m
from calchub.api.call import Call
from calchub.api.errors import HandlerError
from calchub.api.registry import handles
from calchub.db.tables import accounts, projects
from calchub.db.types import utcnow
from calchub.projects import files
from calchub.projects.access import check_project_access, require_project
from calchub.projects.execution import ExecLimits, exec_reply, plan_exec
from calchub.projects.lifecycle import ensure_running, start_project
from calchub.projects.store import get_project, insert_project
from calchub.runtime import RuntimeFailure

log = logging.getLogger("calchub.projects")

DEFAULT_IMAGE = "ubuntu2004"


@handles("create_project")
async def create_project(call: Call, msg: m.CreateProject) -> dict[str, Any]:
    licenses = [part.strip() for part in (msg.license or "").split(",") if part.strip()]
    try:
        project_id = await insert_project(
            call.hub.engine,
            owner=call.caller,
            title=msg.title,
            description=msg.description,
            compute_image=msg.image or DEFAULT_IMAGE,
            site_license={license_id: {} for license_id in licenses} or None,
        )
    except RuntimeError as exc:
        raise HandlerError(f"Failed to create new project '{msg.title}' -- {exc}") from None
    if msg.start:
        call.hub.spawn(_start_in_background(call, project_id), f"start project {project_id}")
    return {"event": "project_created", "project_id": project_id}


async def _start_in_background(call: Call, project_id: str) -> None:
    async with call.hub.engine.connect() as conn:
        project = await get_project(conn, project_id)
    if project is not None:
        try:
            await start_project(call.hub, project)
        except RuntimeFailure:
            log.warning("could not start project %s", project_id, exc_info=True)


@handles("touch_project")
async def touch_project(call: Call, msg: m.TouchProject) -> dict[str, Any]:
    project = await check_project_access(call, msg.project_id)
    now = utcnow()
    async with call.hub.engine.begin() as conn:
        last_active = await conn.scalar(
            select(projects.c.last_active)
            .where(projects.c.project_id == project.project_id)
            .with_for_update()
        )
        await conn.execute(
            update(projects)
            .where(projects.c.project_id == project.project_id)
            .values(
                last_edited=now,
                last_activity=now,
                last_active={**(last_active or {}), call.caller: now.isoformat()},
            )
        )
        await conn.execute(
            update(accounts).where(accounts.c.account_id == call.caller).values(last_active=now)
        )
    call.hub.spawn(
        _start_in_background(call, project.project_id), f"touch project {project.project_id}"
    )
    return {"event": "success"}


@handles("disconnect_from_project")
async def disconnect_from_project(call: Call, msg: m.DisconnectFromProject) -> dict[str, Any]:
    # Each request opens its own connection to the project's agent, so there is nothing
    # held open to drop; the access check still applies.
    await check_project_access(call, msg.project_id)
    return {"event": "success"}


@handles("project_exec")
async def project_exec(call: Call, msg: m.ProjectExec) -> dict[str, Any]:
    project = await require_project(call, msg.project_id, write=True)
    site = await call.hub.site.all()
    limits = ExecLimits(
        max_timeout_s=float(site["exec_max_timeout_s"]), max_output=int(site["exec_max_output"])
    )
    request, requested = plan_exec(
        command=msg.command,
        args=msg.args,
        path=msg.path,
        timeout=msg.timeout,
        max_output=msg.max_output,
        bash=msg.bash,
        limits=limits,
    )

    async def run() -> Any:
        spec = await ensure_running(call.hub, project, site)
        return await call.hub.runtime.exec(spec, request)

    try:
        if msg.aggregate is None:
            result = await run()
        else:
            key = (
                project.project_id,
                request.command,
                tuple(request.args),
                request.path,
                request.timeout_s,
                request.max_output,
                request.bash,
            )
            result = await call.hub.aggregator.run(key, msg.aggregate, run)
    except RuntimeFailure as exc:
        raise HandlerError(
            f"Error executing command '{msg.command}' with args '{','.join(msg.args)}' -- "
            f"error {exc}"
        ) from None
    return exec_reply(
        original_command=msg.command,
        original_args=msg.args,
        request=request,
        result=result,
        requested_max_output=requested,
        err_on_exit=msg.err_on_exit,
        help_email=site["help_email"],
    )


@handles("read_text_file_from_project")
async def read_text_file(call: Call, msg: m.ReadTextFileFromProject) -> dict[str, Any]:
    if isinstance(msg.project_id, list) or isinstance(msg.path, list):
        paths = msg.path if isinstance(msg.path, list) else None
        if isinstance(msg.project_id, list):
            ids = msg.project_id
            if paths is None or len(paths) != len(ids):
                raise HandlerError(
                    "if project_id is an array, then path must be an array of the same length"
                )
        else:
            assert paths is not None
            ids = [msg.project_id] * len(paths)
        content: Any = await files.read_many(call, ids, paths)
    else:
        content = await files.read_text(call, msg.project_id, msg.path)
    return {"event": "text_file_read_from_project", "content": content}


@handles("write_text_file_to_project")
async def write_text_file(call: Call, msg: m.WriteTextFileToProject) -> dict[str, Any]:
    await files.write_text(call, msg.project_id, msg.path, msg.content)
    return {"event": "file_written_to_project"}
