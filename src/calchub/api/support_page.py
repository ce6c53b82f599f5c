"""`GET /support/tickets/<n>`: the address create_support_ticket answers with. It shows the
ticket to its account, its creator and admins, authenticated like the API (key as Basic or
Bearer)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from calchub.api.auth import authenticate
from calchub.api.errors import ProtocolError
from calchub.api.responses import json_response
from calchub.hub import Hub
from calchub.support.tickets import ticket_for

NOT_FOUND = {"error": "no such support ticket"}


async def ticket_page(request: Request) -> Response:
    hub: Hub = request.app.state.hub
    try:
        actor = await authenticate(hub, request, public=False)
    except ProtocolError as exc:
        return json_response({"error": exc.message}, status=401)
    raw = request.path_params["ticket_id"]
    if not raw.isdigit() or len(raw) > 18:
        return json_response(NOT_FOUND, status=404)
    ticket = await ticket_for(hub, actor, int(raw))
    if ticket is None:
        return json_response(NOT_FOUND, status=404)
    return json_response({"ticket": ticket})
