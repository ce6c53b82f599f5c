"""v1 handlers for log_client_error, metrics, start_metrics and support tickets."""

from __future__ import annotations

import json

from calchub.api.v1 import messages as m
from calchub.api.v1.call import Call
from calchub.api.v1.registry import Fields, handles
from calchub.support import telemetry
from calchub.support.tickets import NewTicket, create_ticket, ticket_url, tickets_of


@handles("log_client_error")
async def log_client_error(call: Call, msg: m.LogClientError) -> Fields:
    message_id = call.id if isinstance(call.id, str) else json.dumps(call.id)
    await telemetry.log_client_error(call.hub, call.actor, message_id, msg.error)
    return {}


@handles("metrics")
async def metrics(call: Call, msg: m.Metrics) -> Fields:
    await telemetry.record_metrics(call.hub, call.actor, msg.metrics)
    return {}


@handles("start_metrics")
async def start_metrics(call: Call, msg: m.StartMetrics) -> Fields:
    return {"interval_s": telemetry.METRICS_INTERVAL_S}


@handles("create_support_ticket")
async def create_support_ticket(call: Call, msg: m.CreateSupportTicket) -> Fields:
    ticket = NewTicket(
        email_address=msg.email_address,
        subject=msg.subject,
        body=msg.body,
        username=msg.username,
        account_id=msg.account_id or None,
        tags=msg.tags,
        location=msg.location,
        info=msg.info,
    )
    ticket_id = await create_ticket(call.hub, call.actor, ticket)
    return {"url": ticket_url(call.hub, ticket_id)}


@handles("get_support_tickets")
async def get_support_tickets(call: Call, msg: m.GetSupportTickets) -> Fields:
    return {"tickets": await tickets_of(call.hub, call.actor.caller)}
