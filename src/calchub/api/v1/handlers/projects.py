"""v1 handlers for project creation, touch/disconnect, project_exec and text files."""

from __future__ import annotations

from typing import Any

from calchub.api.v1 import messages as m
from calchub.api.v1.call import Call
from calchub.api.v1.registry import Fields, handles
from calchub.projects import files
from calchub.projects.access import check_project_access
from calchub.projects.creation import create_project
from calchub.projects.execution import Command, run_command
from calchub.projects.file_activity import touch_project


@handles("create_project")
async def create_project_handler(call: Call, msg: m.CreateProject) -> Fields:
    project_id = await create_project(
        call.hub,
        call.actor,
        title=msg.title,
        description=msg.description,
        image=msg.image,
        license=msg.license,
        start=msg.start,
    )
    return {"project_id": project_id}


@handles("touch_project")
async def touch_project_handler(call: Call, msg: m.TouchProject) -> Fields:
    await touch_project(call.hub, call.actor, msg.project_id)
    return {}


@handles("disconnect_from_project")
async def disconnect_from_project(call: Call, msg: m.DisconnectFromProject) -> Fields:
    # Each request opens its own connection to the project's agent, so there is nothing
    # held open to drop; the access check still applies.
    await check_project_access(call.hub, call.actor, msg.project_id)
    return {}


@handles("project_exec")
async def project_exec(call: Call, msg: m.ProjectExec) -> Fields:
    command = Command(
        command=msg.command,
        args=msg.args,
        path=msg.path,
        timeout=msg.timeout,
        max_output=msg.max_output,
        bash=msg.bash,
        err_on_exit=msg.err_on_exit,
        aggregate=msg.aggregate,
    )
    output = await run_command(call.hub, call.actor, msg.project_id, command)
    return {"stdout": output.stdout, "stderr": output.stderr, "exit_code": output.exit_code}


@handles("read_text_file_from_project")
async def read_text_file(call: Call, msg: m.ReadTextFileFromProject) -> Fields:
    content: Any
    if isinstance(msg.project_id, list):
        paths = msg.path if isinstance(msg.path, list) else None
        content = await files.read_many(call.hub, call.actor, msg.project_id, paths)
    elif isinstance(msg.path, list):
        ids = [msg.project_id] * len(msg.path)
        content = await files.read_many(call.hub, call.actor, ids, msg.path)
    else:
        content = await files.read_text(call.hub, call.actor, msg.project_id, msg.path)
    return {"content": content}


@handles("write_text_file_to_project")
async def write_text_file(call: Call, msg: m.WriteTextFileToProject) -> Fields:
    await files.write_text(call.hub, call.actor, msg.project_id, msg.path, msg.content)
    return {}
