"""Reads on the event loop: on a SQLite file they see every change committed before them,
by any connection, and never write; elsewhere they send the caller to the pool."""

from __future__ import annotations

import pytest
from sqlalchemy import bindparam, select, text

from calchub.db.engine import create_engine, migrate
from calchub.db.loop_reads import LoopReads, LoopReadUnavailable
from calchub.db.tables import counters

VALUE = select(counters.c.value).where(counters.c.name == bindparam("name"))
BUMP = text("UPDATE counters SET value = value + 1 WHERE name = 'auth_epoch'")


async def test_each_read_sees_every_change_committed_before_it(database_url: str) -> None:
    engine = create_engine(database_url)
    await migrate(engine)
    reads = LoopReads(engine)
    try:
        if engine.dialect.name != "sqlite":
            with pytest.raises(LoopReadUnavailable):
                reads.first(VALUE, {"name": "auth_epoch"})
            return
        row = reads.first(VALUE, {"name": "auth_epoch"})
        assert row is not None
        first = row.value
        for n in range(1, 4):
            async with engine.begin() as conn:
                await conn.execute(BUMP)
            row = reads.first(VALUE, {"name": "auth_epoch"})
            assert row is not None and row.value == first + n
        assert reads.first(VALUE, {"name": "no_such_counter"}) is None
        with pytest.raises(LoopReadUnavailable):
            reads.first(BUMP, {})  # the connection is read-only
        row = reads.first(VALUE, {"name": "auth_epoch"})  # and works again after a refusal
        assert row is not None and row.value == first + 3
    finally:
        reads.close()
        await engine.dispose()
    with pytest.raises(LoopReadUnavailable):
        reads.first(VALUE, {"name": "auth_epoch"})


async def test_an_in_memory_database_is_read_through_the_pool() -> None:
    engine = create_engine("sqlite:///:memory:")
    reads = LoopReads(engine)
    try:
        with pytest.raises(LoopReadUnavailable):
            reads.first(VALUE, {"name": "auth_epoch"})
    finally:
        reads.close()
        await engine.dispose()
