"""v1 handlers for add_license_to_project and remove_license_from_project."""

from __future__ import annotations

from calchub.api.v1 import messages as m
from calchub.api.v1.call import Call
from calchub.api.v1.registry import Fields, handles
from calchub.licenses.apply import change_project_license


@handles("add_license_to_project")
async def add_license_to_project(call: Call, msg: m.AddLicenseToProject) -> Fields:
    await change_project_license(call.hub, call.actor, msg.project_id, msg.license_id, add=True)
    return {}


@handles("remove_license_from_project")
async def remove_license_from_project(call: Call, msg: m.RemoveLicenseFromProject) -> Fields:
    await change_project_license(call.hub, call.actor, msg.project_id, msg.license_id, add=False)
    return {}
