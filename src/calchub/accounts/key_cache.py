"""API-key answers kept in memory while nothing that could change them has changed.

Every change that can alter a live key's answer — the key's deletion or edit, its account's
ban, deletion or groups — bumps the `auth_epoch` counter through database triggers, whoever
made it: this hub, another hub on the same database, or `calchub admin` beside them. An
answer is reused only when the counter, read afresh for this very request, still has the
value it was cached under, so a revocation refuses the next request on every hub. Reading
the counter costs far less than the lookup it saves: SQLite reads it on the event loop from
the local file (WAL readers never wait for writers), PostgreSQL through one dedicated
connection, without the pool or the ORM.

Expiry is checked against the clock on every use. Project-scoped keys are never cached:
whether they work also depends on their creator's membership of the project.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from calchub.accounts.keys import KeyOwner, LiveKey, find_live_key, needs_use_recorded, record_use
from calchub.accounts.secret import digest
from calchub.db.types import utcnow

log = logging.getLogger("calchub.auth")

EPOCH_QUERY = "SELECT value FROM counters WHERE name = 'auth_epoch'"
MAX_ENTRIES = 10_000
# Made by migration 0011. SQLite drops a table's triggers when a migration rebuilds the
# table, so they are looked for before the cache is trusted.
TRIGGERS = {
    "auth_epoch_api_keys_delete",
    "auth_epoch_api_keys_update",
    "auth_epoch_accounts_delete",
    "auth_epoch_accounts_update",
}


class EpochReader(Protocol):
    async def read(self) -> int | None:
        """The counter's committed value now, or None when it cannot be read (then nothing
        is served from the cache)."""

    async def close(self) -> None: ...


class SqliteEpochReader:
    def __init__(self, path: str) -> None:
        self._path = path
        self._conn: sqlite3.Connection | None = None

    async def read(self) -> int | None:
        try:
            if self._conn is None:
                # A short busy timeout: should the file be locked for recovery, fall back to
                # the full lookup rather than stall the event loop.
                self._conn = sqlite3.connect(self._path, timeout=0.05, check_same_thread=False)
                self._conn.execute("PRAGMA query_only = ON")
            row = self._conn.execute(EPOCH_QUERY).fetchone()
        except sqlite3.Error as exc:
            log.warning("cannot read the key cache's counter: %s", exc)
            await self.close()
            return None
        return None if row is None else int(row[0])

    async def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class PostgresEpochReader:
    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._conn: Any = None
        self._lock = asyncio.Lock()

    async def read(self) -> int | None:
        async with self._lock:
            try:
                if self._conn is None or self._conn.is_closed():
                    self._conn = await asyncpg.connect(self._dsn, timeout=5)
                value = await self._conn.fetchval(EPOCH_QUERY, timeout=5)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
                log.warning("cannot read the key cache's counter: %s", exc)
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


class NoEpochReader:
    """For databases without a shared file (in-memory SQLite): never cache."""

    async def read(self) -> int | None:
        return None

    async def close(self) -> None:
        return None


def epoch_reader_for(engine: AsyncEngine) -> EpochReader:
    url = engine.url
    if url.get_backend_name() == "sqlite":
        database = url.database
        if not database or database == ":memory:":
            return NoEpochReader()
        return SqliteEpochReader(database)
    return PostgresEpochReader(url.set(drivername="postgresql").render_as_string(False))


@dataclass
class _Entry:
    epoch: int
    live: LiveKey
    last_used: datetime


class KeyCache:
    def __init__(self, engine: AsyncEngine, reader: EpochReader | None = None) -> None:
        self._engine = engine
        self._reader = reader if reader is not None else epoch_reader_for(engine)
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._checked = False

    async def lookup(self, key: str) -> KeyOwner | None:
        if not self._checked:
            await self._check_triggers()
        # The counter is read before the database: a change committed between the two leaves
        # the new entry under the old value, so it is never used.
        epoch = await self._reader.read()
        key_hash = digest(key)
        entry = self._entries.get(key_hash)
        now = utcnow()
        if entry is not None and entry.epoch == epoch and _unexpired(entry.live, now):
            self._entries.move_to_end(key_hash)
            if needs_use_recorded(entry.last_used, now):
                await record_use(self._engine, entry.live.key_id, now)
                entry.last_used = now
            return entry.live.owner
        self._entries.pop(key_hash, None)
        live = await find_live_key(self._engine, key)
        if live is None:
            return None
        if epoch is not None and live.owner.project_id is None:
            self._entries[key_hash] = _Entry(epoch, live, live.last_used)
            if len(self._entries) > MAX_ENTRIES:
                self._entries.popitem(last=False)
        return live.owner

    async def close(self) -> None:
        self._entries.clear()
        await self._reader.close()

    async def _check_triggers(self) -> None:
        self._checked = True
        if self._engine.dialect.name == "sqlite":
            query = "SELECT name FROM sqlite_master WHERE type = 'trigger'"
        else:
            query = "SELECT tgname FROM pg_trigger"
        async with self._engine.connect() as conn:
            present = {row[0] for row in await conn.execute(text(query))}
        if missing := TRIGGERS - present:
            log.error(
                "API keys are looked up on every request: triggers %s are missing",
                ", ".join(sorted(missing)),
            )
            await self._reader.close()
            self._reader = NoEpochReader()


def _unexpired(live: LiveKey, now: datetime) -> bool:
    return live.expire is None or live.expire > now
