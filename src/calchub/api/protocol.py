"""`POST /api/v1/<event>`: body parsing, API key authentication, validation and dispatch."""

from __future__ import annotations

import base64
import binascii
import json
import logging
import uuid
from datetime import datetime
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from calchub.accounts.keys import lookup_api_key
from calchub.api.call import Call
from calchub.api.errors import HandlerError, ProtocolError
from calchub.api.forms import FormError, parse_form
from calchub.api.registry import DEFINITIONS, HANDLERS, NON_API_EVENTS
from calchub.api.validation import build_message
from calchub.hub import Hub

log = logging.getLogger("calchub.api")

BANNED = "User is BANNED.  If this is a mistake, please contact {help_email}"


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        # CoCalc's wire format: ISO-8601 UTC with milliseconds and a Z.
        return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
    raise TypeError(f"cannot serialise {type(value).__name__}")


def json_response(content: Any, status: int = 200) -> Response:
    body = json.dumps(content, default=_json_default, separators=(",", ":"), ensure_ascii=False)
    return Response(body.encode("utf-8"), status_code=status, media_type="application/json")


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ProtocolError(f"request body too large (limit {limit} bytes)", status=413)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ProtocolError(f"request body too large (limit {limit} bytes)", status=413)
        chunks.append(chunk)
    return b"".join(chunks)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _parse_body(content_type: str, raw: bytes) -> tuple[Any, bool]:
    """The body as a value, and whether it came from a form (strings to coerce)."""
    media = content_type.split(";", 1)[0].strip().lower()
    if media == "application/json" or media.endswith("+json"):
        if not raw.strip():
            return {}, False
        try:
            return json.loads(raw, parse_constant=_reject_constant), False
        except (ValueError, UnicodeDecodeError) as exc:
            raise ProtocolError(f"invalid JSON body: {exc}") from None
        except RecursionError:
            raise ProtocolError("invalid JSON body: nested too deeply") from None
    if media == "application/x-www-form-urlencoded":
        try:
            return parse_form(raw), True
        except (FormError, ValueError) as exc:
            raise ProtocolError(f"invalid form body: {exc}") from None
    return {}, False


def _api_key(header: str | None) -> str:
    if header is None:
        raise ProtocolError("You must provide authentication via an API key.")
    parts = header.split()
    kind = parts[0] if parts else "undefined"
    value = parts[1] if len(parts) > 1 else ""
    if kind == "Bearer":
        return value
    if kind == "Basic":
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return ""
        return decoded.split(":", 1)[0]
    raise ProtocolError(f"Unknown authorization type '{kind}'")


async def authenticate(hub: Hub, request: Request, public: bool) -> str | None:
    key = _api_key(request.headers.get("authorization"))
    if key == "" and public:
        return None
    found = await lookup_api_key(hub.engine, key)
    if found is None:
        raise ProtocolError("No account found. Is your API key wrong?")
    if found.banned:
        raise ProtocolError(BANNED.format(help_email=await hub.site.get("help_email")))
    return found.account_id


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


async def _handle(hub: Hub, request: Request) -> Response:
    event = request.url.path.rsplit("/", 1)[-1]
    raw = await _read_body(request, hub.settings.max_body_bytes)
    body, from_form = _parse_body(request.headers.get("content-type", ""), raw)

    defn = DEFINITIONS.get(event)
    account_id = await authenticate(hub, request, public=defn is not None and defn.public)
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
    ip = request.client.host if request.client else ""
    call = Call(hub=hub, account_id=account_id, ip=ip, id=msg_id)
    try:
        reply = await handler(call, message)
    except HandlerError as exc:
        reply = {"event": "error", "error": exc.error}
    response_id = reply.pop("id", msg_id)
    return json_response({"event": reply.pop("event"), "id": response_id, **reply})
