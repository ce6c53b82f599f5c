"""JSON responses in CoCalc's wire format, shared by every edge."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from starlette.responses import Response


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        # CoCalc's wire format: ISO-8601 UTC with milliseconds and a Z.
        return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
    raise TypeError(f"cannot serialise {type(value).__name__}")


def json_response(content: Any, status: int = 200) -> Response:
    body = json.dumps(content, default=_json_default, separators=(",", ":"), ensure_ascii=False)
    return Response(body.encode("utf-8"), status_code=status, media_type="application/json")
