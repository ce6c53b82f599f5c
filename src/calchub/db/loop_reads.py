"""One-row reads on the event loop, for a SQLite file.

Through the async engine, a read of one indexed row costs more in the hop to aiosqlite's
thread and the greenlet around it than in SQLite. Here the same prebuilt statement runs on a
synchronous connection to the same file, on the loop: WAL readers never wait for writers, and
each statement outside a transaction sees everything committed before it, by any hub.
Elsewhere (PostgreSQL, an in-memory database) and when the file cannot be read at once,
`LoopReadUnavailable` tells the caller to read through the pool as before.

Each statement is compiled by SQLAlchemy once, with its columns' result conversions, and then
runs on the driver's connection directly: SQLAlchemy's connection, cache lookup and result
objects around a one-row read cost several times the read itself.
"""

from __future__ import annotations

import logging
import sqlite3
from collections import namedtuple
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import Executable
from sqlalchemy.dialects import sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger("calchub.db")

_DIALECT = sqlite.dialect()


class LoopReadUnavailable(Exception):
    """This read cannot be made on the loop now: read through the pool."""


class _Prepared:
    """A SELECT as SQLite's SQL, the order of its parameters, and what turns a raw row into
    one whose columns are attributes holding what SQLAlchemy would have given."""

    def __init__(self, statement: Executable) -> None:
        compiled = statement.compile(dialect=_DIALECT)  # type: ignore[attr-defined]
        self.sql = compiled.string
        self.names = list(compiled.positiontup or [])
        for name in self.names:
            # Parameters are passed as given: a type that would convert them is not for here.
            if compiled.binds[name].type.dialect_impl(_DIALECT).bind_processor(_DIALECT):
                raise TypeError(f"parameter {name!r} needs a conversion loop reads do not make")
        # A statement of plain SQL has no typed columns: its rows are taken as they come.
        columns = list(getattr(statement, "selected_columns", []))
        self.convert: list[Callable[[Any], Any] | None] = [
            column.type.dialect_impl(_DIALECT).result_processor(_DIALECT, None)
            for column in columns
        ]
        self.row: Any = namedtuple("Row", [column.key for column in columns]) if columns else None

    def first(self, conn: sqlite3.Connection, params: Mapping[str, Any]) -> Any:
        cursor = conn.execute(self.sql, [params[name] for name in self.names])
        try:
            raw = cursor.fetchone()
            names = [item[0] for item in cursor.description or []]
        finally:
            cursor.close()  # ends the statement, and with it its read of the file
        if raw is None:
            return None
        if self.row is None:
            plain: Any = namedtuple("Row", names)  # type: ignore[misc]
            return plain._make(raw)
        return self.row._make(
            value if convert is None else convert(value)
            for convert, value in zip(self.convert, raw, strict=True)
        )


class LoopReads:
    def __init__(self, engine: AsyncEngine) -> None:
        self._path: str | None = None
        self._conn: sqlite3.Connection | None = None
        self._prepared: dict[int, tuple[Executable, _Prepared]] = {}
        url = engine.url
        if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
            return
        self._path = url.database

    def first(self, statement: Executable, params: Mapping[str, Any]) -> Any:
        """The statement's first row (its columns as attributes), or None when it has none."""
        if self._path is None:
            raise LoopReadUnavailable
        prepared = self._prepare(statement)
        try:
            if self._conn is None:
                # One connection, used only by the loop's thread; a short busy timeout so
                # that a file locked for recovery sends the read to the pool instead of
                # stalling the loop.
                self._conn = sqlite3.connect(self._path, timeout=0.05, check_same_thread=False)
                self._conn.execute("PRAGMA query_only = ON")
            return prepared.first(self._conn, params)
        except sqlite3.Error as exc:
            log.warning("cannot read on the event loop, reading through the pool: %s", exc)
            self._drop_connection()
            raise LoopReadUnavailable from exc

    def _prepare(self, statement: Executable) -> _Prepared:
        # Keyed by identity (statements are built once, at import); the statement is kept
        # alongside so that its id cannot be reused by another.
        found = self._prepared.get(id(statement))
        if found is None:
            found = self._prepared[id(statement)] = (statement, _Prepared(statement))
        return found[1]

    def close(self) -> None:
        self._path = None
        self._drop_connection()

    def _drop_connection(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
