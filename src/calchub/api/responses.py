"""JSON responses in CoCalc's wire format, shared by every edge."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import orjson
from starlette.responses import Response

from calchub.json_text import JsonText


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        # CoCalc's wire format: ISO-8601 UTC with milliseconds and a Z. isoformat is the
        # faster way to the same text where it pads the year as strftime does (from 1000).
        if value.year >= 1000:
            return value.isoformat(timespec="milliseconds")[:23] + "Z"
        return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
    if isinstance(value, JsonText):
        return orjson.Fragment(value.text)
    raise TypeError(f"cannot serialise {type(value).__name__}")


def _json_default_stdlib(value: Any) -> Any:
    """As _json_default, for the standard library, which takes no text as it is."""
    if isinstance(value, JsonText):
        return json.loads(value.text)
    return _json_default(value)


# Times keep CoCalc's format (through _json_default); keys that are not strings are written
# as the standard library writes them.
_ORJSON_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_NON_STR_KEYS


def json_bytes(content: Any) -> bytes:
    """`content` as compact UTF-8 JSON. orjson writes large texts (a file's contents) many
    times faster; what it refuses (integers beyond 64 bits, say) the standard library
    writes, or refuses, as before."""
    try:
        return orjson.dumps(content, default=_json_default, option=_ORJSON_OPTIONS)
    except orjson.JSONEncodeError:
        text = json.dumps(
            content, default=_json_default_stdlib, separators=(",", ":"), ensure_ascii=False
        )
        return text.encode("utf-8")


def json_response(content: Any, status: int = 200) -> Response:
    return Response(json_bytes(content), status_code=status, media_type="application/json")
