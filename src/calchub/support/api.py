"""Handlers for log_client_error, metrics and start_metrics."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from sqlalchemy import insert, update
from sqlalchemy.exc import IntegrityError

from calchub.api import messages as m
from calchub.api.call import Call
from calchub.api.errors import HandlerError
from calchub.api.registry import handles
from calchub.db.tables import account_metrics, client_error_log
from calchub.db.types import utcnow

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
