"""`POST /api/v2/<path>`: authentication as CoCalc's v2 does it (a missing or bad key makes
an anonymous caller, not an error), body parsing, dispatch through the route registry, and
refusals rendered as HTTP 200 `{"error": message}`."""

from __future__ import annotations

import logging
import uuid

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from calchub.actor import Actor
from calchub.api.auth import authenticate, client_ip
from calchub.api.bodies import ANONYMOUS_LIMIT, read_request
from calchub.api.errors import ProtocolError
from calchub.api.responses import json_response
from calchub.api.v2 import routes  # noqa: F401 - registers the routes
from calchub.api.v2.registry import (
    NOT_AVAILABLE,
    ROUTES,
    WEB_ONLY,
    V2Call,
    is_skipped,
    is_web_only,
)
from calchub.errors import DomainError
from calchub.hub import Hub

log = logging.getLogger("calchub.api")


async def handle_v2(request: Request) -> Response:
    hub: Hub = request.app.state.hub
    try:
        return await _handle(hub, request)
    except ProtocolError as exc:
        # A malformed or oversized body is a 400 (spec §1.3's recommendation), as are the
        # other refusals of the edge itself.
        return json_response({"error": exc.message}, status=400)
    except ClientDisconnect:
        return Response(status_code=400)
    except Exception:
        reference = str(uuid.uuid4())
        log.exception("internal error, reference %s", reference)
        return json_response(
            {"error": f"internal server error (reference {reference})"}, status=500
        )


async def _actor(hub: Hub, request: Request) -> Actor:
    try:
        return await authenticate(hub, request, public=True)
    except ProtocolError:
        return Actor.anonymous(client_ip(request))


async def _handle(hub: Hub, request: Request) -> Response:
    path = request.path_params.get("rest", "").strip("/")
    route = ROUTES.get(path)
    if route is None:
        if is_skipped(path):
            return json_response({"error": NOT_AVAILABLE})
        if is_web_only(path):
            return json_response({"error": WEB_ONLY})
        return json_response({"error": f"no such endpoint '/api/v2/{path}'"}, status=404)
    # The key is checked before the body is read: a caller without one costs next to nothing.
    actor = await _actor(hub, request)
    if not actor.signed_in and not route.public:
        await read_request(request, ANONYMOUS_LIMIT)
        return json_response({"error": "must be signed in"})
    limit = hub.settings.max_body_bytes if actor.signed_in else ANONYMOUS_LIMIT
    body: object = {}
    if request.method == "POST":
        body, _ = await read_request(request, min(limit, hub.settings.max_body_bytes))
    if not isinstance(body, dict):
        raise ProtocolError("the body must be a JSON object")
    try:
        result = await route.handler(V2Call(hub=hub, actor=actor, path=path), body)
    except DomainError as exc:
        return json_response({"error": exc.message})
    return json_response(result)
