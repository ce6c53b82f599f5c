"""One-row reads on the event loop, for a SQLite file.

Through the async engine, a read of one indexed row costs more in the hop to aiosqlite's
thread and the greenlet around it than in SQLite. Here the same prebuilt statement runs on a
synchronous connection to the same file, on the loop: WAL readers never wait for writers, and
each statement outside a transaction sees everything committed before it, by any hub.
Elsewhere (PostgreSQL, an in-memory database) and when the file cannot be read at once,
`LoopReadUnavailable` tells the caller to read through the pool as before.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Executable, Row, event
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import StaticPool

log = logging.getLogger("calchub.db")


class LoopReadUnavailable(Exception):
    """This read cannot be made on the loop now: read through the pool."""


class LoopReads:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine: Engine | None = None
        url = engine.url
        if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
            return
        # One connection, used only by the loop's thread; a short busy timeout so that a file
        # locked for recovery sends the read to the pool instead of stalling the loop.
        self._engine = create_sync_engine(
            url.set(drivername="sqlite"),
            poolclass=StaticPool,
            connect_args={"timeout": 0.05, "check_same_thread": False},
        )
        event.listen(self._engine, "connect", _read_only)

    def first(self, statement: Executable, params: Mapping[str, Any]) -> Row[Any] | None:
        """The statement's first row, or None when it has none."""
        if self._engine is None:
            raise LoopReadUnavailable
        try:
            with self._engine.connect() as conn:
                return conn.execute(statement, dict(params)).first()
        except DBAPIError as exc:
            log.warning("cannot read on the event loop, reading through the pool: %s", exc)
            self._engine.dispose()
            raise LoopReadUnavailable from exc

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None


def _read_only(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.execute("PRAGMA query_only = ON")
