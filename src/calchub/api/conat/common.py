"""What both bridge endpoints share: reading `{name, args, timeout}`, running a method under
its deadline, and CoCalc's answers (HTTP 200 always; `{"error": ...}` on failure)."""

from __future__ import annotations

import asyncio
import logging
import math
import uuid
from dataclasses import dataclass
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from calchub.api.bodies import read_request
from calchub.api.conat.registry import BridgeCall, Method
from calchub.api.errors import ProtocolError
from calchub.api.responses import json_response
from calchub.errors import DomainError
from calchub.hub import Hub
from calchub.projects.execution import ExecFailed

log = logging.getLogger("calchub.api")

DEFAULT_TIMEOUT_MS = 15000
# A call may ask for up to an hour; the clients' own HTTP timeout is far shorter.
MAX_TIMEOUT_MS = 3600 * 1000
# The deadline runs past the requested timeout, so a command's own kill message wins.
GRACE_S = 5


class BridgeError(Exception):
    """A refusal of the bridge itself, answered as `{"error": message}` verbatim."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class BridgeRequest:
    name: str
    args: list[Any]
    timeout_ms: float
    body: dict[str, Any]


def answer(value: Any) -> Response:
    return json_response(value)


def error(message: str) -> Response:
    return json_response({"error": message})


async def read_bridge_request(hub: Hub, request: Request) -> BridgeRequest:
    try:
        body, _ = await read_request(request, hub.settings.max_body_bytes)
    except ProtocolError as exc:
        raise BridgeError(exc.message) from None
    if not isinstance(body, dict):
        raise BridgeError("the request body must be a JSON object")
    name = body.get("name")
    if not isinstance(name, str) or not name:
        raise BridgeError("name must be specified")
    args = body.get("args")
    if args is None:
        args = []
    if not isinstance(args, list):
        raise BridgeError("args must be an array")
    timeout = body.get("timeout")
    if timeout is None:
        timeout = DEFAULT_TIMEOUT_MS
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, int | float)
        or not math.isfinite(timeout)
        or timeout <= 0
    ):
        raise BridgeError("timeout must be a positive number of milliseconds")
    return BridgeRequest(name, args, min(float(timeout), MAX_TIMEOUT_MS), body)


def rendered(exc: DomainError, *, raw_exec: bool) -> str:
    """`${err}` of CoCalc's methods: `Error: <msg>`; a failed command in a project is the
    bare string the project threw."""
    if raw_exec and isinstance(exc, ExecFailed):
        return exc.reason
    return f"Error: {exc.message}"


def _consume(task: asyncio.Task[Any]) -> None:
    # Work that outlived its caller's deadline: its result or failure has no one to go to.
    if not task.cancelled() and task.exception() is not None:
        log.info("bridge call finished after its deadline: %s", task.exception())


async def run_method(
    method: Method, call: BridgeCall, args: list[Any], *, raw_exec: bool, timeout_text: str
) -> Response:
    """Run the method; the work carries on past the deadline (a start keeps starting), but
    the caller is told `timeout` then."""
    task = asyncio.ensure_future(method.handler(call, args))
    try:
        result = await asyncio.wait_for(asyncio.shield(task), call.timeout_s + GRACE_S)
    except TimeoutError:
        task.add_done_callback(_consume)
        return error(timeout_text)
    except DomainError as exc:
        return error(rendered(exc, raw_exec=raw_exec))
    return answer(result)


async def guarded(work: Any) -> Response:
    """Bridge errors as `{"error"}`; nothing unexpected escapes as a traceback."""
    try:
        response: Response = await work
        return response
    except BridgeError as exc:
        return error(exc.message)
    except ClientDisconnect:
        return Response(status_code=400)
    except Exception:
        reference = str(uuid.uuid4())
        log.exception("internal error, reference %s", reference)
        return error(f"internal server error (reference {reference})")
