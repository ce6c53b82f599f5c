"""v1 handlers for copying between projects, copy status and cancelling, and public reads."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from calchub.api.v1 import messages as m
from calchub.api.v1.call import Call
from calchub.api.v1.registry import Fields, Reply, handles
from calchub.errors import Invalid
from calchub.files import copies
from calchub.files.copies import CopyOrder, CopyQuery
from calchub.files.public import read_public_text

NOTE = "Query copy_path_status with the copy_path_id to learn if the copy operation was successful."


def _order(msg: m.CopyRequest, exclude: list[str] | None) -> CopyOrder:
    return CopyOrder(
        src_project_id=msg.src_project_id,
        src_path=msg.src_path,
        target_project_id=msg.target_project_id,
        target_path=msg.target_path,
        overwrite_newer=msg.overwrite_newer,
        delete_missing=msg.delete_missing,
        backup=msg.backup,
        timeout=msg.timeout,
        exclude=exclude,
    )


@handles("copy_path_between_projects")
async def copy_path_between_projects(call: Call, msg: m.CopyPathBetweenProjects) -> Fields | Reply:
    order = replace(
        _order(msg, msg.exclude),
        exclude_history=bool(msg.exclude_history),
        scheduled=msg.scheduled,
    )
    copy_id = await copies.copy_between_projects(call.hub, call.actor, order)
    if msg.wait_until_done and msg.scheduled is None:
        await copies.wait_for_copy(call.hub, copy_id)
        return {}
    return Reply("copy_path_between_projects_response", {"copy_path_id": copy_id, "note": NOTE})


@handles("copy_public_path_between_projects")
async def copy_public_path_between_projects(
    call: Call, msg: m.CopyPublicPathBetweenProjects
) -> Fields:
    await copies.copy_public_path(call.hub, call.actor, _order(msg, msg.exclude))
    return {}


@handles("copy_path_status")
async def copy_path_status(call: Call, msg: m.CopyPathStatus) -> Fields:
    data: Any
    if msg.src_project_id is None and msg.target_project_id is None:
        if msg.copy_path_id is None:
            raise Invalid(
                "'copy_path_id' (UUID) of a copy operation or "
                "'src_project_id/target_project_id' must be defined"
            )
        data = await copies.copy_status(call.hub, call.actor, msg.copy_path_id)
    else:
        query = CopyQuery(
            src_project_id=msg.src_project_id,
            target_project_id=msg.target_project_id,
            src_path=msg.src_path,
            pending=msg.pending,
            failed=msg.failed,
            offset=msg.offset or 0,
            limit=msg.limit,
        )
        data = await copies.list_copy_status(call.hub, call.actor, query)
    return {"data": data}


@handles("copy_path_delete")
async def copy_path_delete(call: Call, msg: m.CopyPathDelete) -> Fields:
    if not msg.copy_path_id:
        raise Invalid("ERROR: copy_path_id missing")
    copy_id = await copies.cancel_copy(call.hub, call.actor, msg.copy_path_id)
    return {"data": f"copy_path_id = '{copy_id}' deleted"}


@handles("public_get_text_file")
async def public_get_text_file(call: Call, msg: m.PublicGetTextFile) -> Fields:
    return {"data": await read_public_text(call.hub, call.actor, msg.project_id, msg.path)}
