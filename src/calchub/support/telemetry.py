"""What clients report about themselves: errors they hit (kept a month) and their latest
metrics (one row per account)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from sqlalchemy import insert, update
from sqlalchemy.exc import IntegrityError

from calchub.actor import Actor
from calchub.db.tables import account_metrics, client_error_log
from calchub.errors import Invalid
from calchub.hub import Hub

ERROR_LOG_RETENTION = timedelta(days=30)
METRICS_INTERVAL_S = 30
MAX_METRICS_BYTES = 64 * 1024


async def log_client_error(hub: Hub, actor: Actor, message_id: str, error: str) -> None:
    async with hub.engine.begin() as conn:
        await conn.execute(
            insert(client_error_log).values(
                id=message_id,
                event="error",
                error=error,
                account_id=actor.caller,
                time=actor.now,
                expire=actor.now + ERROR_LOG_RETENTION,
            )
        )


async def record_metrics(hub: Hub, actor: Actor, metrics: Any) -> None:
    """Keep the account's latest report."""
    caller = actor.caller
    try:
        size = len(json.dumps(metrics, allow_nan=False))
    except ValueError:
        raise Invalid("metrics must not contain NaN or Infinity") from None
    if size > MAX_METRICS_BYTES:
        raise Invalid(f"metrics must be at most {MAX_METRICS_BYTES} bytes of JSON")
    values = {"metrics": metrics, "time": actor.now}
    update_row = update(account_metrics).where(account_metrics.c.account_id == caller)
    async with hub.engine.begin() as conn:
        changed = await conn.execute(update_row.values(**values))
    if changed.rowcount == 0:
        try:
            async with hub.engine.begin() as conn:
                await conn.execute(insert(account_metrics).values(account_id=caller, **values))
        except IntegrityError:
            # A concurrent first report inserted the row: the latest one wins.
            async with hub.engine.begin() as conn:
                await conn.execute(update_row.values(**values))
