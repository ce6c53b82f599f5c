"""`POST /api/v1/<event>`: body parsing, API key authentication, validation, dispatch, and
the rendering of domain refusals as v1 error events."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from calchub.api.auth import authenticate
from calchub.api.bodies import ANONYMOUS_LIMIT, read_request
from calchub.api.errors import ProtocolError
from calchub.api.responses import json_response
from calchub.api.v1.call import Call
from calchub.api.v1.registry import DEFINITIONS, HANDLERS, NON_API_EVENTS, Reply
from calchub.api.v1.validation import build_message
from calchub.errors import DomainError
from calchub.hub import Hub

log = logging.getLogger("calchub.api")


async def handle_v1(request: Request) -> Response:
    hub: Hub = request.app.state.hub
    try:
        return await _handle(hub, request)
    except ProtocolError as exc:
        return json_response({"error": exc.message}, status=exc.status)
    except ClientDisconnect:
        return Response(status_code=400)
    except Exception:
        reference = str(uuid.uuid4())
        log.exception("internal error, reference %s", reference)
        return json_response(
            {"error": f"internal server error (reference {reference})"}, status=500
        )


def _event_name(path: str) -> str:
    """The path's last segment, escaped as `request.url.path` gives it, without building the
    whole URL (host, scheme, query) that `request.url` parses on every call."""
    return path.rsplit("/", 1)[-1].replace("?", "%3F").replace("#", "%23").replace("\\", "%5C")


async def _handle(hub: Hub, request: Request) -> Response:
    event = _event_name(request.scope["path"])
    defn = DEFINITIONS.get(event)
    # The key is checked before the body is read: a caller without one costs next to nothing.
    actor = await authenticate(hub, request, public=defn is not None and defn.public)
    limit = hub.settings.max_body_bytes if actor.signed_in else ANONYMOUS_LIMIT
    body, from_form = await read_request(request, min(limit, hub.settings.max_body_bytes))
    if defn is None:
        if event in NON_API_EVENTS:
            raise ProtocolError(f"endpoint '{event}' is not part of the HTTP API")
        raise ProtocolError(f"unknown endpoint '{event}'")
    if not isinstance(body, dict):
        body = (
            {str(index): value for index, value in enumerate(body)}
            if isinstance(body, list)
            else {"": body}
        )
    handler = HANDLERS.get(event)
    if handler is None and defn.dispatchable:
        # Said before validation: the caller learns that nothing here can serve the event.
        raise ProtocolError(f"endpoint '{event}' is not implemented yet on this server", status=501)
    message, msg_id = build_message(event, defn.request, body, from_form=from_form)
    if handler is None:
        raise ProtocolError(f"unknown message event type '{event}'")
    call = Call(hub=hub, actor=actor, id=msg_id)
    reply: dict[str, Any]
    try:
        result = await handler(call, message)
    except DomainError as exc:
        reply = {"event": "error", "id": msg_id, "error": exc.detail}
    else:
        if isinstance(result, Reply):
            reply = {"event": result.event, "id": msg_id, **result.fields}
        else:
            reply = {"id": msg_id, **result}
            if defn.response_event is not None:
                reply = {"event": defn.response_event, **reply}
    return json_response(reply)
