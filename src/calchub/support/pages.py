"""`GET /support/tickets/<n>`: the address create_support_ticket answers with. It shows the
ticket to its account, its creator and admins, authenticated like the API (key as Basic or
Bearer)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from calchub.accounts.store import account_groups
from calchub.api.errors import ProtocolError
from calchub.api.protocol import authenticate, json_response
from calchub.hub import Hub
from calchub.support.tickets import ticket_for

NOT_FOUND = {"error": "no such support ticket"}


async def ticket_page(request: Request) -> Response:
    hub: Hub = request.app.state.hub
    try:
        caller = await authenticate(hub, request, public=False)
    except ProtocolError as exc:
        return json_response({"error": exc.message}, status=401)
    raw = request.path_params["ticket_id"]
    if caller is None or not raw.isdigit() or len(raw) > 18:
        return json_response(NOT_FOUND, status=404)
    is_admin = "admin" in await account_groups(hub.engine, caller)
    ticket = await ticket_for(hub, int(raw), caller, is_admin)
    if ticket is None:
        return json_response(NOT_FOUND, status=404)
    return json_response({"ticket": ticket})
