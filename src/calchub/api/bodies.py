"""Reading and parsing request bodies (JSON or form), with a size limit, for every edge.

Edges authenticate before they read a body, so a caller without a key never makes the server
read (let alone parse) more than ANONYMOUS_LIMIT bytes. Work on bodies larger than
PARSE_INLINE that Python code does (walking what was parsed, reading a form) runs on a worker
thread, which lets the event loop in between, so one large body never stalls every other
request; orjson's parse runs on the loop, since it holds the interpreter while it parses on a
thread too."""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any

import orjson
from starlette.requests import Request

from calchub.api.errors import ProtocolError
from calchub.api.forms import FormError, parse_form

# Public requests (no key) carry a project id and a path, nothing more.
ANONYMOUS_LIMIT = 64 * 1024
PARSE_INLINE = 64 * 1024
FLAT_FIELDS = 64
# No message of any edge nests deeper; recursive code behind the edges (the query engine,
# JSON columns) may then recurse without running out of stack.
MAX_DEPTH = 64


async def read_request(request: Request, limit: int) -> tuple[Any, bool]:
    """The request's body, parsed (see parse_body), read up to `limit` bytes. A GET without
    a body carries its fields in the query string, read as a form."""
    raw = await read_body(request, limit)
    content_type = request.headers.get("content-type", "")
    query_string: bytes = request.scope.get("query_string", b"")
    if request.method == "GET" and not raw and query_string:
        raw = query_string
        content_type = "application/x-www-form-urlencoded"
    if len(raw) <= PARSE_INLINE:
        return parse_body(content_type, raw)
    if _is_json(content_type) and raw.strip():
        # The usual large body: an object of a few fields, one of them a file's contents.
        # Its checks cost next to nothing: no thread to hand it to and back.
        parsed = _fast_loads(raw)
        if parsed is not None and _flat_object(parsed):
            return parsed, False
    return await asyncio.to_thread(parse_body, content_type, raw)


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def _flat_object(value: Any) -> bool:
    """An object of a few scalar fields (so nested one level deep), read alike by orjson
    and the standard library."""
    return (
        isinstance(value, dict)
        and len(value) <= FLAT_FIELDS
        and not any(isinstance(item, (dict, list)) for item in value.values())
        and not _has_large_float(value)
    )


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


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:40]} is out of range")
    return value


def nesting_depth(value: Any) -> int:
    """How deeply arrays and objects nest in `value` (a scalar is 0), without recursion."""
    deepest = 0
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, depth)
        pending.extend((child, depth + 1) for child in children)
    return deepest


def _has_large_float(value: Any) -> bool:
    """Whether `value` holds a whole float too large for a double to be exact: orjson reads
    an integer beyond 64 bits as one, where the standard library keeps it exact."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, float):
            if abs(item) >= 2**53 and item.is_integer():
                return True
        elif isinstance(item, dict):
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


def _fast_loads(text: str | bytes) -> Any:
    """orjson's reading of `text`, or None where the standard library must read it (a JSON
    null too, which both read alike)."""
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    return None if _has_large_float(value) else value


def parse_json_text(text: str | bytes) -> Any:
    """JSON as every edge accepts it: finite numbers only, nested at most MAX_DEPTH deep.
    Raises ValueError saying what is wrong.

    orjson reads large bodies (a file's contents) many times faster. Whatever it refuses
    (invalid JSON, infinite numbers, lone surrogates, deep nesting) or may read differently
    (huge integers) is read by the standard library instead, so the result and the errors
    are the standard library's."""
    value = _fast_loads(text)
    if value is None:
        try:
            value = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
        except RecursionError:
            raise ValueError("nested too deeply") from None
    if nesting_depth(value) > MAX_DEPTH:
        raise ValueError(f"nested too deeply (at most {MAX_DEPTH} levels)")
    return value


def parse_body(content_type: str, raw: bytes) -> tuple[Any, bool]:
    """The body as a value, and whether it came from a form (strings to coerce)."""
    if _is_json(content_type):
        if not raw.strip():
            return {}, False
        try:
            return parse_json_text(raw), False
        except (ValueError, UnicodeDecodeError) as exc:
            raise ProtocolError(f"invalid JSON body: {exc}") from None
    media = content_type.split(";", 1)[0].strip().lower()
    if media == "application/x-www-form-urlencoded":
        try:
            return parse_form(raw), True
        except (FormError, ValueError) as exc:
            raise ProtocolError(f"invalid form body: {exc}") from None
    return {}, False
