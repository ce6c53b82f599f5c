"""Reading and parsing request bodies (JSON or form), with a size limit, for every edge.

Edges authenticate before they read a body, so a caller without a key never makes the server
read (let alone parse) more than ANONYMOUS_LIMIT bytes; bodies larger than PARSE_INLINE are
parsed on a worker thread, so one large body never stalls every other request."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from starlette.requests import Request

from calchub.api.errors import ProtocolError
from calchub.api.forms import FormError, parse_form

# Public requests (no key) carry a project id and a path, nothing more.
ANONYMOUS_LIMIT = 64 * 1024
PARSE_INLINE = 64 * 1024


async def read_request(request: Request, limit: int) -> tuple[Any, bool]:
    """The request's body, parsed (see parse_body), read up to `limit` bytes."""
    raw = await read_body(request, limit)
    content_type = request.headers.get("content-type", "")
    if len(raw) <= PARSE_INLINE:
        return parse_body(content_type, raw)
    return await asyncio.to_thread(parse_body, content_type, raw)


async def read_body(request: Request, limit: int) -> bytes:
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


def parse_body(content_type: str, raw: bytes) -> tuple[Any, bool]:
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
