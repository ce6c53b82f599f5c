"""Billing events answer that billing is not configured: calchub has no payment backend."""

from __future__ import annotations

from typing import Any

from calchub import billing
from calchub.api.v1.call import Call
from calchub.api.v1.messages import BILLING_EVENTS
from calchub.api.v1.registry import handles


async def billing_not_configured(call: Call, msg: Any) -> dict[str, Any]:
    billing.not_configured()


for _event in BILLING_EVENTS:
    handles(_event)(billing_not_configured)
