"""Change counters (`counters` rows moved by database triggers), read without the pool.

A value kept in memory is reused only while the counter guarding it, read afresh for each
use, has not moved. Triggers move the counters whoever changes the rows: this hub, another
hub on the same database, `calchub admin`, plain SQL. Reading one costs far less than the
query it saves: SQLite reads it on the event loop from the local file (WAL readers never wait
for writers), PostgreSQL through one dedicated connection, without the pool or the ORM.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from typing import Any, Protocol

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger("calchub.db")

QUERY = "SELECT value FROM counters WHERE name = ?"
PG_QUERY = "SELECT value FROM counters WHERE name = $1"


class CounterReader(Protocol):
    async def read(self, name: str) -> int | None:
        """The counter's committed value now, or None when it cannot be read (then nothing
        may be served from memory)."""

    async def close(self) -> None: ...


class SqliteCounterReader:
    def __init__(self, path: str) -> None:
        self._path = path
        self._conn: sqlite3.Connection | None = None

    async def read(self, name: str) -> int | None:
        try:
            if self._conn is None:
                # A short busy timeout: should the file be locked for recovery, fall back to
                # the full lookup rather than stall the event loop.
                self._conn = sqlite3.connect(self._path, timeout=0.05, check_same_thread=False)
                self._conn.execute("PRAGMA query_only = ON")
            row = self._conn.execute(QUERY, (name,)).fetchone()
        except sqlite3.Error as exc:
            log.warning("cannot read the change counters: %s", exc)
            await self.close()
            return None
        return None if row is None else int(row[0])

    async def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class PostgresCounterReader:
    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._conn: Any = None
        self._lock = asyncio.Lock()

    async def read(self, name: str) -> int | None:
        async with self._lock:
            try:
                if self._conn is None or self._conn.is_closed():
                    self._conn = await asyncpg.connect(self._dsn, timeout=5)
                value = await self._conn.fetchval(PG_QUERY, name, timeout=5)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
                log.warning("cannot read the change counters: %s", exc)
                await self._close_locked()
                return None
        return None if value is None else int(value)

    async def close(self) -> None:
        async with self._lock:
            await self._close_locked()

    async def _close_locked(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            try:
                await conn.close(timeout=2)
            except Exception:  # a broken connection is dropped either way
                conn.terminate()


class NoCounterReader:
    """For databases without a shared file (in-memory SQLite): never cache."""

    async def read(self, name: str) -> int | None:
        return None

    async def close(self) -> None:
        return None


def counter_reader_for(engine: AsyncEngine) -> CounterReader:
    url = engine.url
    if url.get_backend_name() == "sqlite":
        database = url.database
        if not database or database == ":memory:":
            return NoCounterReader()
        return SqliteCounterReader(database)
    return PostgresCounterReader(url.set(drivername="postgresql").render_as_string(False))


async def missing_triggers(engine: AsyncEngine, names: set[str]) -> set[str]:
    """Which of the named triggers do not exist. SQLite drops a table's triggers when a
    migration rebuilds the table, so a cache checks for its own before trusting a counter."""
    if engine.dialect.name == "sqlite":
        query = "SELECT name FROM sqlite_master WHERE type = 'trigger'"
    else:
        query = "SELECT tgname FROM pg_trigger"
    async with engine.connect() as conn:
        present = {row[0] for row in await conn.execute(text(query))}
    return names - present
