"""Handlers for log_client_error, metrics, start_metrics and support tickets."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from sqlalchemy import insert, update
from sqlalchemy.exc import IntegrityError

from calchub.accounts.store import is_valid_email
from calchub.api import messages as m
from calchub.api.call import Call
from calchub.api.errors import HandlerError
from calchub.api.registry import handles
from calchub.db.tables import account_metrics, client_error_log
from calchub.db.types import utcnow
from calchub.support.tickets import (
    NewTicket,
    TicketError,
    create_ticket,
    ticket_url,
    tickets_of,
)

ERROR_LOG_RETENTION = timedelta(days=30)
METRICS_INTERVAL_S = 30
MAX_METRICS_BYTES = 64 * 1024


@handles("log_client_error")
async def log_client_error(call: Call, msg: m.LogClientError) -> dict[str, Any]:
    now = utcnow()
    message_id = call.id if isinstance(call.id, str) else json.dumps(call.id)
    async with call.hub.engine.begin() as conn:
        await conn.execute(
            insert(client_error_log).values(
                id=message_id,
                event="error",
                error=msg.error,
                account_id=call.caller,
                time=now,
                expire=now + ERROR_LOG_RETENTION,
            )
        )
    return {"event": "success"}


@handles("metrics")
async def metrics(call: Call, msg: m.Metrics) -> dict[str, Any]:
    try:
        size = len(json.dumps(msg.metrics, allow_nan=False))
    except ValueError:
        raise HandlerError("metrics must not contain NaN or Infinity") from None
    if size > MAX_METRICS_BYTES:
        raise HandlerError(f"metrics must be at most {MAX_METRICS_BYTES} bytes of JSON")
    now = utcnow()
    values = {"metrics": msg.metrics, "time": now}
    update_row = update(account_metrics).where(account_metrics.c.account_id == call.caller)
    async with call.hub.engine.begin() as conn:
        changed = await conn.execute(update_row.values(**values))
    if changed.rowcount == 0:
        try:
            async with call.hub.engine.begin() as conn:
                await conn.execute(insert(account_metrics).values(account_id=call.caller, **values))
        except IntegrityError:
            # A concurrent first report inserted the row: the latest one wins.
            async with call.hub.engine.begin() as conn:
                await conn.execute(update_row.values(**values))
    return {"event": "success"}


@handles("start_metrics")
async def start_metrics(call: Call, msg: m.StartMetrics) -> dict[str, Any]:
    return {"event": "start_metrics", "interval_s": METRICS_INTERVAL_S}


@handles("create_support_ticket")
async def create_support_ticket(call: Call, msg: m.CreateSupportTicket) -> dict[str, Any]:
    if not is_valid_email(msg.email_address):
        raise HandlerError(f"invalid email_address '{msg.email_address}'")
    if msg.info is not None and len(json.dumps(msg.info)) > MAX_METRICS_BYTES:
        raise HandlerError(f"info must be at most {MAX_METRICS_BYTES} bytes of JSON")
    account_id = msg.account_id.lower() if msg.account_id else None
    # A ticket shows in its account's list: nobody files tickets into another's list.
    if account_id not in (None, call.caller) and not await call.is_admin():
        raise HandlerError("account_id must be the account of the API key")
    ticket = NewTicket(
        email_address=msg.email_address,
        subject=msg.subject,
        body=msg.body,
        username=msg.username,
        account_id=account_id,
        tags=msg.tags,
        location=msg.location,
        info=msg.info,
    )
    try:
        ticket_id = await create_ticket(call.hub, call.caller, ticket)
    except TicketError as exc:
        raise HandlerError(str(exc)) from None
    return {"event": "support_ticket_url", "url": ticket_url(call.hub, ticket_id)}


@handles("get_support_tickets")
async def get_support_tickets(call: Call, msg: m.GetSupportTickets) -> dict[str, Any]:
    return {"event": "support_tickets", "tickets": await tickets_of(call.hub, call.caller)}
