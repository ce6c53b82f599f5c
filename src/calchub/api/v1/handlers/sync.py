"""v1 handler for `get_syncdoc_history`."""

from __future__ import annotations

from calchub.api.v1 import messages as m
from calchub.api.v1.call import Call
from calchub.api.v1.registry import Fields, handles
from calchub.sync.history import syncdoc_history


@handles("get_syncdoc_history")
async def get_syncdoc_history(call: Call, msg: m.GetSyncdocHistory) -> Fields:
    history = await syncdoc_history(call.hub, call.actor, msg.string_id, bool(msg.patches))
    return {"history": history}
