"""Reads run on the held connection's own driver: one text value (a listing the database
wrote, userquery/json_rows.py), or the rows of a query table's get.

Through SQLAlchemy's execution such a read costs, besides the statement, its execution
context and result set-up, and on SQLite four hops to aiosqlite's thread (cursor, execute,
fetch, close) where the driver needs one. Here each statement shape is compiled once
(calchub/db/prepared.py), keyed as SQLAlchemy's own cache keys it, and each run takes its
parameter values from the new statement, through the same bind processing SQLAlchemy
applies. It runs on the connection the caller holds: the same transaction if one is open,
else a statement of its own, which sees everything committed before it, as any read does.
Nothing but the compiled shapes is kept. A statement whose parameters need more (a list
expanded at execution) and any backend but SQLite and PostgreSQL go through SQLAlchemy as
before.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.cache_key import CacheKey

from calchub.db.prepared import Prepared, prepare

# Prepared statements by (dialect, cache key); None for a shape SQLAlchemy must run. Shapes
# come from the query tables' fields and options, so there are few; the bound only keeps a
# caller trying every combination from growing it.
_PREPARED: dict[tuple[str, Any], Prepared | None] = {}
_MAX_PREPARED = 512
_DRIVERS = frozenset({"sqlite", "postgresql"})


async def read_text(conn: AsyncConnection, statement: Select[Any]) -> str | None:
    """The first column of the statement's first row (None when it has no row)."""
    found = _prepared(statement, conn.dialect)
    if found is None:
        value = (await conn.execute(statement)).scalar()
    else:
        rows = await _driver_rows(conn, *found)
        value = rows[0][0] if rows else None
    return None if value is None else str(value)


async def read_rows(conn: AsyncConnection, statement: Select[Any]) -> list[Any]:
    """The statement's rows, each with its columns as attributes holding what SQLAlchemy
    would have given (calchub/db/prepared.py)."""
    found = _prepared(statement, conn.dialect)
    if found is None:
        return list(await conn.execute(statement))
    prepared = found[0]
    return [prepared.make_row(row, _no_plain_names) for row in await _driver_rows(conn, *found)]


async def read_plain_rows(conn: AsyncConnection, statement: Select[Any]) -> list[Any]:
    """The statement's rows as the driver gives them, unconverted: for columns the driver
    already gives as SQLAlchemy would (text, integers). Indexable by position only."""
    found = _prepared(statement, conn.dialect)
    if found is None:
        return list(await conn.execute(statement))
    return await _driver_rows(conn, *found)


async def _driver_rows(conn: AsyncConnection, prepared: Prepared, key: CacheKey) -> list[Any]:
    """The raw rows of a prepared statement, its values taken from `key`, run on the
    connection's own driver."""
    values = prepared.arguments_of(key)
    driver = await _driver_of(conn)
    if conn.dialect.name == "sqlite":
        # aiosqlite: execute and fetch in one hop to its thread.
        return list(await driver.execute_fetchall(prepared.sql, values))
    return list(await driver.fetch(prepared.sql, *values))


async def _driver_of(conn: AsyncConnection) -> Any:
    """The driver's connection under `conn`. A connection in use has it at hand: taken
    straight, it saves a switch to SQLAlchemy's greenlet for each read; only one that must
    be connected again (after an invalidation) goes through SQLAlchemy's own call."""
    held = conn.sync_connection
    if held is not None and not held.closed and not held.invalidated:
        return held.connection.driver_connection
    return (await conn.get_raw_connection()).driver_connection


def _no_plain_names() -> list[str]:
    # Only statements built from tables come here: their columns are always known.
    raise TypeError("read_rows takes statements with typed columns")


def _prepared(statement: Select[Any], dialect: Dialect) -> tuple[Prepared, CacheKey] | None:
    """The statement's shape prepared, with the cache key its values come from, or None
    when SQLAlchemy must run it."""
    if dialect.name not in _DRIVERS:
        return None
    # The key SQLAlchemy's own statement cache uses (as in its caching examples): equal for
    # statements that differ only in parameter values, which it lists in a fixed order.
    key = statement._generate_cache_key()
    if key is None or key.params or any(bind.expanding for bind in key.bindparams):
        return None
    index = (dialect.name, key.key)
    if index not in _PREPARED:
        if len(_PREPARED) >= _MAX_PREPARED:
            _PREPARED.clear()
        _PREPARED[index] = prepare(statement, dialect, key)
    prepared = _PREPARED[index]
    if prepared is None:
        return None
    return prepared, key
