"""v1 handler for listing a folder inside a public path."""

from __future__ import annotations

from calchub.api.v1 import messages as m
from calchub.api.v1.call import Call
from calchub.api.v1.registry import Fields, handles
from calchub.files.public_listing import ListingRequest, public_listing


@handles("public_get_directory_listing")
async def public_get_directory_listing(call: Call, msg: m.PublicGetDirectoryListing) -> Fields:
    request = ListingRequest(
        project_id=msg.project_id,
        path=msg.path,
        hidden=msg.hidden,
        newest_first=msg.time,
        start=msg.start,
        limit=msg.limit,
    )
    return {"result": await public_listing(call.hub, call.actor, request)}
