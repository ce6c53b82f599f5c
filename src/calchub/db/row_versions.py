"""When a row read with its version (projects.version, migration 0024) may be kept and
reused for as long as the row has that version.

That needs a version to name one state of the row for good: no other content may ever be
read with the same (row, version). Triggers give the row a new value on every change, so
committed states never share one. What remains is a state that does not last:
- PostgreSQL takes versions from a sequence, which never hands a value out twice, even when
  the transaction that took it rolls back: a connection may keep what it reads, its own
  uncommitted writes included.
- SQLite takes them from a counter in the database, which a rollback takes back, and the
  next writer then takes the same value for another content. A connection's own uncommitted
  write is the only uncommitted state it can read (WAL readers see committed data only), and
  pysqlite opens a transaction only before a write: a connection with none open reads only
  committed states.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection


async def may_keep(conn: AsyncConnection) -> bool:
    """Whether what `conn` reads now, row and version together, may be kept by version."""
    name = conn.dialect.name
    if name == "postgresql":
        return True
    if name != "sqlite":
        return False
    driver: Any = (await conn.get_raw_connection()).driver_connection
    return not driver.in_transaction
