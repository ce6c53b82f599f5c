"""The central event log (who did what, for operators)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from calchub.db.tables import central_log
from calchub.db.types import utcnow
from calchub.ids import new_id


async def log_event(conn: AsyncConnection, event: str, value: dict[str, Any]) -> None:
    await conn.execute(
        insert(central_log).values(id=new_id(), event=event, value=value, time=utcnow())
    )
