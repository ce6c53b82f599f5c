"""One-row reads without the engine's pool: on the event loop for a SQLite file, through a
few connections of their own for PostgreSQL.

Through the async engine, a read of one indexed row costs more than the read itself: on
SQLite the hop to aiosqlite's thread and the greenlet around it, on PostgreSQL the pool's
ping when a connection is taken and its rollback when it is given back (three round trips
for one). Here each statement is compiled by SQLAlchemy once, with its columns' result
conversions (calchub/db/prepared.py), and runs on the driver's connection directly:

- SQLite: a synchronous connection to the same file, on the loop (WAL readers never wait for
  writers);
- PostgreSQL: a small asyncpg pool of read-only connections, given back as they are (they
  hold no state to reset).

Each statement runs outside any transaction, so it sees everything committed before it, by
any hub. Elsewhere (an in-memory database) and when the database cannot be read this way at
once, `LoopReadUnavailable` tells the caller to read through the engine as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
from collections.abc import Mapping
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import Executable
from sqlalchemy.dialects import sqlite
from sqlalchemy.dialects.postgresql import asyncpg as pg_asyncpg
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncEngine

from calchub.db.prepared import Prepared, prepare

log = logging.getLogger("calchub.db")

_SQLITE = sqlite.dialect()
_POSTGRES = pg_asyncpg.dialect()  # type: ignore[no-untyped-call]
# Connections for PostgreSQL reads: a read takes one for a single round trip.
PG_CONNECTIONS = 4
PG_TIMEOUT_S = 5.0


class LoopReadUnavailable(Exception):
    """This read cannot be made this way now: read through the engine."""


class LoopReads:
    def __init__(self, engine: AsyncEngine) -> None:
        self._path: str | None = None
        self._sqlite: sqlite3.Connection | None = None
        self._dsn: str | None = None
        self._pool: Any = None
        self._opening = asyncio.Lock()
        self._prepared: dict[tuple[int, str], tuple[Executable, Prepared]] = {}
        url = engine.url
        if url.get_backend_name() == "postgresql":
            self._dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
        elif url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
            self._path = url.database

    async def read(self, statement: Executable, params: Mapping[str, Any]) -> Any:
        """The statement's first row (its columns as attributes), or None when it has none."""
        if self._dsn is not None:
            return await self._read_postgres(statement, params)
        return self.first(statement, params)

    def first(self, statement: Executable, params: Mapping[str, Any]) -> Any:
        """As `read`, on the event loop itself: SQLite only."""
        if self._path is None:
            raise LoopReadUnavailable
        prepared = self._prepare(statement, _SQLITE)
        try:
            if self._sqlite is None:
                # One connection, used only by the loop's thread; a short busy timeout so
                # that a file locked for recovery sends the read to the pool instead of
                # stalling the loop.
                self._sqlite = sqlite3.connect(self._path, timeout=0.05, check_same_thread=False)
                self._sqlite.execute("PRAGMA query_only = ON")
            cursor = self._sqlite.execute(prepared.sql, prepared.arguments(params))
            try:
                raw = cursor.fetchone()
                names = [item[0] for item in cursor.description or []]
            finally:
                cursor.close()  # ends the statement, and with it its read of the file
        except sqlite3.Error as exc:
            log.warning("cannot read on the event loop, reading through the pool: %s", exc)
            self._close_sqlite()
            raise LoopReadUnavailable from exc
        return None if raw is None else prepared.make_row(raw, lambda: names)

    async def _read_postgres(self, statement: Executable, params: Mapping[str, Any]) -> Any:
        prepared = self._prepare(statement, _POSTGRES)
        try:
            pool = self._pool or await self._open_pool()
            async with pool.acquire(timeout=PG_TIMEOUT_S) as conn:
                raw = await conn.fetchrow(
                    prepared.sql, *prepared.arguments(params), timeout=PG_TIMEOUT_S
                )
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
            log.warning("cannot read directly, reading through the pool: %s", exc)
            await self._close_pool()
            raise LoopReadUnavailable from exc
        return None if raw is None else prepared.make_row(raw, lambda: list(raw.keys()))

    async def _open_pool(self) -> Any:
        async with self._opening:
            if self._pool is None:
                self._pool = await asyncpg.create_pool(
                    self._dsn,
                    min_size=1,
                    max_size=PG_CONNECTIONS,
                    init=_decode_json,
                    reset=_keep_as_is,
                    timeout=PG_TIMEOUT_S,
                    # Reads only: a statement that would write is refused.
                    server_settings={"default_transaction_read_only": "on"},
                )
            return self._pool

    def _prepare(self, statement: Executable, dialect: Dialect) -> Prepared:
        # Keyed by identity (statements are built once, at import, so there are few); the
        # statement is kept alongside so that its id cannot be reused by another.
        key = (id(statement), dialect.name)
        found = self._prepared.get(key)
        if found is None:
            prepared = prepare(statement, dialect)
            # These reads take ids and names, which the driver takes as given: a statement
            # whose parameters would need more is refused at its first read, not run here.
            if prepared is None:
                raise TypeError("parameters worked out at execution are not for loop reads")
            if prepared.converted:
                name = prepared.converted[0]
                raise TypeError(f"parameter {name!r} needs a conversion loop reads do not make")
            found = self._prepared[key] = (statement, prepared)
        return found[1]

    async def close(self) -> None:
        self._path = self._dsn = None
        self._close_sqlite()
        await self._close_pool()

    def _close_sqlite(self) -> None:
        if self._sqlite is not None:
            self._sqlite.close()
            self._sqlite = None

    async def _close_pool(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            try:
                await asyncio.wait_for(pool.close(), PG_TIMEOUT_S)
            except Exception:  # a broken pool is dropped either way
                with contextlib.suppress(Exception):
                    pool.terminate()


async def _decode_json(conn: Any) -> None:
    # As SQLAlchemy's asyncpg dialect does: the driver decodes JSON, the column types do not.
    for kind in ("json", "jsonb"):
        await conn.set_type_codec(kind, encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def _keep_as_is(_conn: Any) -> None:
    """A connection that only ever ran SELECTs outside transactions has nothing to reset
    (asyncpg's reset would cost a round trip each time one is given back)."""
