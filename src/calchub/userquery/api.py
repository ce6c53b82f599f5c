"""The `query` handler: protocol checks and the response envelope (spec §1.1-1.2)."""

from __future__ import annotations

from typing import Any

from calchub.api import messages as m
from calchub.api.call import Call
from calchub.api.errors import HandlerError, ProtocolError
from calchub.api.registry import handles
from calchub.db.types import utcnow
from calchub.userquery.context import Caller
from calchub.userquery.engine import run_query
from calchub.userquery.errors import QueryError


@handles("query")
async def query(call: Call, msg: m.Query) -> dict[str, Any]:
    if msg.multi_response:
        raise ProtocolError("multi_response queries aren't supported")
    # Milliseconds, like every time on the wire: a row keyed by a time the server chose can
    # then be found again with the time a get returned.
    now = utcnow()
    now = now.replace(microsecond=now.microsecond // 1000 * 1000)
    caller = Caller(call.hub, call.caller, await call.is_admin(), now)
    try:
        result = await run_query(caller, msg.query, msg.options, msg.changes, call.id)
    except QueryError as exc:
        raise HandlerError(exc.message) from None
    reply: dict[str, Any] = {"event": "query", "query": result, "multi_response": False}
    if msg.options is not None:
        reply["options"] = msg.options
    if msg.changes is not None:
        reply["changes"] = msg.changes
    return reply
