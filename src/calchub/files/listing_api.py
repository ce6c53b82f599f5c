"""The handler for listing a folder inside a public path."""

from __future__ import annotations

from typing import Any

from calchub.api import messages as m
from calchub.api.call import Call
from calchub.api.registry import handles
from calchub.files.public_listing import ListingRequest, public_listing


@handles("public_get_directory_listing")
async def public_get_directory_listing(
    call: Call, msg: m.PublicGetDirectoryListing
) -> dict[str, Any]:
    request = ListingRequest(
        project_id=msg.project_id,
        path=msg.path,
        hidden=msg.hidden,
        newest_first=msg.time,
        start=msg.start,
        limit=msg.limit,
    )
    return {"event": "public_directory_listing", "result": await public_listing(call.hub, request)}
