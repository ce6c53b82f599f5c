"""Change counters (`counters` rows moved by database triggers), read without the pool.

A value kept in memory is reused only while the counter guarding it, read afresh for each
use, has not moved. Triggers move the counters whoever changes the rows: this hub, another
hub on the same database, `calchub admin`, plain SQL. Reading one costs far less than the
query it saves: SQLite reads it on the event loop from the local file (WAL readers never wait
for writers), PostgreSQL through one dedicated connection, without the pool or the ORM.

A read answers every request that had arrived when it began (see calchub/arrivals.py):
under load one read serves the requests that arrived together instead of each making its
own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from typing import Any, Protocol

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from calchub import arrivals

log = logging.getLogger("calchub.db")

QUERY = "SELECT value FROM counters WHERE name = ?"
PG_QUERY = "SELECT name, value FROM counters"


class CounterReader(Protocol):
    async def read(self, name: str, arrival: int | None = None) -> int | None:
        """The counter's committed value now, or None when it cannot be read (then nothing
        may be served from memory). With `arrival` (a request's number, see
        calchub/arrivals.py), a value read since that request arrived will do."""

    async def close(self) -> None: ...


class _Kept:
    """Each counter's value from the last read of it that succeeded, with how many requests
    had arrived when that read began."""

    def __init__(self) -> None:
        self._values: dict[str, tuple[int, int]] = {}

    def value(self, name: str, arrival: int | None) -> int | None:
        """The kept value if its read began after request `arrival` arrived, else None."""
        if arrival is None:
            return None
        kept = self._values.get(name)
        return kept[0] if kept is not None and arrival <= kept[1] else None

    def keep(self, values: dict[str, int], after: int) -> None:
        for name, value in values.items():
            self._values[name] = (value, after)


class SqliteCounterReader:
    def __init__(self, path: str) -> None:
        self._path = path
        self._conn: sqlite3.Connection | None = None
        self._kept = _Kept()
        self._closed = False

    async def read(self, name: str, arrival: int | None = None) -> int | None:
        if self._closed:
            return None
        if (kept := self._kept.value(name, arrival)) is not None:
            return kept
        after = arrivals.arrived()
        try:
            if self._conn is None:
                # A short busy timeout: should the file be locked for recovery, fall back to
                # the full lookup rather than stall the event loop.
                self._conn = sqlite3.connect(self._path, timeout=0.05, check_same_thread=False)
                self._conn.execute("PRAGMA query_only = ON")
            row = self._conn.execute(QUERY, (name,)).fetchone()
        except sqlite3.Error as exc:
            log.warning("cannot read the change counters: %s", exc)
            self._drop_connection()
            return None
        if row is None:
            return None
        value = int(row[0])
        self._kept.keep({name: value}, after)
        return value

    async def close(self) -> None:
        self._closed = True
        self._drop_connection()

    def _drop_connection(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class PostgresCounterReader:
    """Reads every counter in one round trip on one dedicated connection. Callers arriving
    together share a read, but only one that starts after they arrived: a read already in
    flight may predate a change whose commit the caller has seen. A request that arrived
    before the last read began takes that read's values without waiting."""

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._conn: Any = None
        self._next: asyncio.Future[dict[str, int] | None] | None = None
        self._serving: asyncio.Future[dict[str, int] | None] | None = None
        self._driver: asyncio.Task[None] | None = None
        self._kept = _Kept()
        self._closed = False

    async def read(self, name: str, arrival: int | None = None) -> int | None:
        if self._closed:
            return None
        if (kept := self._kept.value(name, arrival)) is not None:
            return kept
        if self._next is None:
            self._next = asyncio.get_running_loop().create_future()
        joined = self._next
        if self._driver is None or self._driver.done():
            self._driver = asyncio.get_running_loop().create_task(self._drive())
        values = await asyncio.shield(joined)
        return None if values is None else values.get(name)

    async def _drive(self) -> None:
        while self._next is not None:
            # Whoever joins from now on waits for the following read.
            self._serving, self._next = self._next, None
            after = arrivals.arrived()
            try:
                values = await self._query()
            except Exception:
                log.exception("cannot read the change counters")
                values = None
            if values is not None:
                self._kept.keep(values, after)
            if not self._serving.done():
                self._serving.set_result(values)

    async def _query(self) -> dict[str, int] | None:
        try:
            if self._conn is None or self._conn.is_closed():
                self._conn = await asyncpg.connect(self._dsn, timeout=5)
            rows = await self._conn.fetch(PG_QUERY, timeout=5)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
            log.warning("cannot read the change counters: %s", exc)
            await self._drop_connection()
            return None
        return {row[0]: int(row[1]) for row in rows}

    async def close(self) -> None:
        self._closed = True
        if self._driver is not None:
            self._driver.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._driver
        for waiting in (self._serving, self._next):
            if waiting is not None and not waiting.done():
                waiting.set_result(None)
        await self._drop_connection()

    async def _drop_connection(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            try:
                await conn.close(timeout=2)
            except Exception:  # a broken connection is dropped either way
                conn.terminate()


class NoCounterReader:
    """For databases without a shared file (in-memory SQLite): never cache."""

    async def read(self, name: str, arrival: int | None = None) -> int | None:
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


async def reader_if_triggers_exist(
    engine: AsyncEngine, reader: CounterReader, triggers: set[str], consequence: str
) -> CounterReader:
    """`reader`, or when a trigger it depends on is missing, one that never lets anything be
    served from memory (and the log says so, with `consequence`)."""
    if missing := await missing_triggers(engine, triggers):
        log.error("%s: triggers %s are missing", consequence, ", ".join(sorted(missing)))
        return NoCounterReader()
    return reader
