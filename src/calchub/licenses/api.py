"""Handlers for add_license_to_project and remove_license_from_project."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from calchub.accounts.store import is_valid_uuid
from calchub.api import messages as m
from calchub.api.call import Call
from calchub.api.errors import HandlerError
from calchub.api.registry import handles
from calchub.licenses.apply import add_license, remove_license
from calchub.projects.access import check_project_access

Change = Callable[[AsyncEngine, str, str], Awaitable[None]]


async def _change(call: Call, msg: m.ProjectLicense, change: Change) -> dict[str, Any]:
    try:
        project = await check_project_access(call, msg.project_id)
    except HandlerError as exc:
        raise HandlerError(f"must have write access to {msg.project_id} -- {exc}") from None
    # CoCalc stores any text as a key; only a license id can ever mean something there.
    if not is_valid_uuid(msg.license_id):
        raise HandlerError(f"invalid license_id -- {msg.license_id}")
    await change(call.hub.engine, project.project_id, msg.license_id.lower())
    return {"event": "success"}


@handles("add_license_to_project")
async def add_license_to_project(call: Call, msg: m.AddLicenseToProject) -> dict[str, Any]:
    return await _change(call, msg, add_license)


@handles("remove_license_from_project")
async def remove_license_from_project(
    call: Call, msg: m.RemoveLicenseFromProject
) -> dict[str, Any]:
    return await _change(call, msg, remove_license)
