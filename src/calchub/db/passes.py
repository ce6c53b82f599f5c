"""One hub per interval for duties that scan the whole site (the idle-project scan): a hub
runs a pass only when it moves the pass's due time on, with a conditional UPDATE that one
hub alone can win. Nothing holds the claim: when the hub that won stops, the due time simply
passes and the next hub to look runs the pass, at most one interval late.

The due time is kept as milliseconds since the epoch in a `counters` row named
`due:<pass>`, created by the first hub that looks. Hubs compare it with their own clocks, so
hubs on several machines need their clocks in step (NTP) for the pass to keep its rhythm."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from calchub.db.tables import counters


def _millis(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


async def claim_pass(engine: AsyncEngine, name: str, interval_s: float, now: datetime) -> bool:
    """Whether this hub runs pass `name` now: True for one hub per `interval_s`."""
    key = f"due:{name}"
    at = _millis(now)
    due = at + int(interval_s * 1000)
    async with engine.begin() as conn:
        moved = await conn.execute(
            update(counters).where(counters.c.name == key, counters.c.value <= at).values(value=due)
        )
        if moved.rowcount == 1:
            return True
        dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
        created = await conn.execute(
            dialect.insert(counters)
            .values(name=key, value=due)
            .on_conflict_do_nothing(index_elements=["name"])
        )
        return created.rowcount == 1
