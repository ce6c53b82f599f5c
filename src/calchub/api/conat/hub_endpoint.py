"""`POST /api/conat/hub`: one call of a hub method, as the caller's account."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from calchub.api.auth import authenticate
from calchub.api.conat import methods  # noqa: F401  (declares the methods)
from calchub.api.conat.common import (
    BridgeError,
    error,
    guarded,
    read_bridge_request,
    run_method,
)
from calchub.api.conat.registry import HUB_GROUPS, HUB_METHODS, Auth, BridgeCall
from calchub.api.errors import ProtocolError
from calchub.hub import Hub

NOT_SIGNED_IN = "must be signed in and MUST provide an api key (cookies are not allowed)"


async def handle_hub(request: Request) -> Response:
    return await guarded(_handle(request.app.state.hub, request))


async def _handle(hub: Hub, request: Request) -> Response:
    # The key is checked before the body is read; project keys count as not signed in.
    try:
        actor = await authenticate(hub, request, public=False)
    except ProtocolError:
        raise BridgeError(NOT_SIGNED_IN) from None
    if actor.account_id is None:
        raise BridgeError(NOT_SIGNED_IN)
    call_request = await read_bridge_request(hub, request)
    name = call_request.name
    method = HUB_METHODS.get(name)
    if method is None or name.split(".", 1)[0] not in HUB_GROUPS:
        return error(f"Error: unknown function '{name}'")
    args: list[Any] = list(call_request.args)
    if method.auth in (Auth.AUTH_FIRST, Auth.AUTH_FIRST_REQUIRE_ACCOUNT):
        if not args or args[0] is None:
            args[:1] = [{}]
        if isinstance(args[0], dict):
            args[0] = {**args[0], "account_id": actor.account_id}
    call = BridgeCall(hub=hub, actor=actor, name=name, timeout_s=call_request.timeout_ms / 1000)
    timeout_text = (
        f"timeout - callHub: subject='hub.account.{actor.account_id}.api', "
        f"name='{name}', code='408' "
    )
    return await run_method(method, call, args, raw_exec=False, timeout_text=timeout_text)
