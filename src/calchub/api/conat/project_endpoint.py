"""`POST /api/conat/project`: one call of a project's API, as the key's account (which must
be a collaborator) or as the project of a project key. A stopped project is started first."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from calchub.api.auth import authenticate
from calchub.api.conat import methods  # noqa: F401  (declares the methods)
from calchub.api.conat.common import (
    BridgeError,
    answer,
    error,
    guarded,
    read_bridge_request,
    run_method,
)
from calchub.api.conat.registry import PROJECT_GROUPS, PROJECT_METHODS, BridgeCall
from calchub.api.errors import ProtocolError
from calchub.hub import Hub

NOT_SIGNED_IN = "must sign in as project or account"
NO_PROJECT = "must specify project_id or use project-specific api key"
WRONG_PROJECT = "project specific api key must match requested project"
NO_COMPUTE_SERVERS = "compute servers are not supported"


async def handle_project(request: Request) -> Response:
    return await guarded(_handle(request.app.state.hub, request))


async def _handle(hub: Hub, request: Request) -> Response:
    try:
        actor = await authenticate(hub, request, public=False)
    except ProtocolError:
        raise BridgeError(NOT_SIGNED_IN) from None
    call_request = await read_bridge_request(hub, request)
    body = call_request.body
    requested = body.get("project_id")
    if requested is not None and not isinstance(requested, str):
        raise BridgeError("project_id must be a string")
    if actor.project_id is not None:
        if requested is not None and requested.lower() != actor.project_id:
            raise BridgeError(WRONG_PROJECT)
        project_id = actor.project_id
    elif requested is None:
        raise BridgeError(NO_PROJECT)
    else:
        project_id = requested
    if body.get("compute_server_id") not in (None, 0):
        raise BridgeError(NO_COMPUTE_SERVERS)
    name = call_request.name
    if name == "ping":
        return answer("pong")
    method = PROJECT_METHODS.get(name)
    if method is None or name.split(".", 1)[0] not in PROJECT_GROUPS:
        return error(f"Error: unknown function '{name}'")
    args: list[Any] = list(call_request.args)
    if name == "system.test":
        first = args[0] if args and isinstance(args[0], dict) else {}
        args[:1] = [{**first, "project_id": project_id}]
    call = BridgeCall(
        hub=hub,
        actor=actor,
        name=name,
        timeout_s=call_request.timeout_ms / 1000,
        project_id=project_id,
    )
    return await run_method(method, call, args, raw_exec=True, timeout_text="timeout")
