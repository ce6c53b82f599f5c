"""Handler for `get_syncdoc_history`."""

from __future__ import annotations

from typing import Any

from calchub.api import messages as m
from calchub.api.call import Call
from calchub.api.errors import HandlerError
from calchub.api.registry import handles
from calchub.sync.history import HistoryError, syncdoc_history


@handles("get_syncdoc_history")
async def get_syncdoc_history(call: Call, msg: m.GetSyncdocHistory) -> dict[str, Any]:
    caller, is_admin = call.caller, await call.is_admin()
    try:
        async with call.hub.engine.connect() as conn:
            history = await syncdoc_history(
                conn, msg.string_id, caller, is_admin, bool(msg.patches)
            )
    except HistoryError as exc:
        raise HandlerError(
            f"unable to get syncdoc history for string_id {msg.string_id} -- {exc}"
        ) from None
    return {"event": "syncdoc_history", "history": history}
