"""v1 handlers for add_license_to_project, remove_license_from_project and
get_available_upgrades."""

from __future__ import annotations

from calchub.api.v1 import messages as m
from calchub.api.v1.call import Call
from calchub.api.v1.registry import Fields, handles
from calchub.licenses.apply import change_project_license
from calchub.licenses.upgrades import available_upgrades


@handles("add_license_to_project")
async def add_license_to_project(call: Call, msg: m.AddLicenseToProject) -> Fields:
    await change_project_license(call.hub, call.actor, msg.project_id, msg.license_id, add=True)
    return {}


@handles("remove_license_from_project")
async def remove_license_from_project(call: Call, msg: m.RemoveLicenseFromProject) -> Fields:
    await change_project_license(call.hub, call.actor, msg.project_id, msg.license_id, add=False)
    return {}


@handles("get_available_upgrades")
async def get_available_upgrades(call: Call, msg: m.GetAvailableUpgrades) -> Fields:
    found = await available_upgrades(call.hub, call.actor)
    return {"total": found.total, "excess": found.excess, "available": found.available}
