"""v1 handler for `query` (spec §1.1-1.2): protocol checks and the response envelope."""

from __future__ import annotations

from calchub.api.errors import ProtocolError
from calchub.api.v1 import messages as m
from calchub.api.v1.call import Call
from calchub.api.v1.registry import Fields, handles
from calchub.userquery.engine import run_query


@handles("query")
async def query(call: Call, msg: m.Query) -> Fields:
    if msg.multi_response:
        raise ProtocolError("multi_response queries aren't supported")
    # The reply is only encoded, so listings may come as the database's JSON text.
    result = await run_query(
        call.hub, call.actor, msg.query, msg.options, msg.changes, call.id, json_text=True
    )
    reply: Fields = {"query": result, "multi_response": False}
    if msg.options is not None:
        reply["options"] = msg.options
    if msg.changes is not None:
        reply["changes"] = msg.changes
    return reply
