"""Billing events answer that billing is not configured: calchub has no payment backend."""

from __future__ import annotations

from typing import Any

from calchub.api.call import Call
from calchub.api.errors import HandlerError
from calchub.api.messages import BILLING_EVENTS
from calchub.api.registry import handles

NOT_CONFIGURED = "billing is not configured on this server"


async def billing_not_configured(call: Call, msg: Any) -> dict[str, Any]:
    raise HandlerError(NOT_CONFIGURED)


# Available upgrades come from billing subscriptions, so they answer the same.
for _event in (*BILLING_EVENTS, "get_available_upgrades"):
    handles(_event)(billing_not_configured)
