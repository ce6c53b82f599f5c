"""The change counters' readers, on the database under test (SQLite file or PostgreSQL):
every committed change is seen by the next read, concurrent reads agree, and a reader that
cannot reach its database answers None, so nothing is served from memory."""

from __future__ import annotations

import asyncio

from sqlalchemy import text

from calchub.db.counters import PostgresCounterReader, counter_reader_for
from calchub.db.engine import create_engine, migrate
from tests.harness import arriving

BUMP = text("UPDATE counters SET value = value + 1 WHERE name = 'auth_epoch'")


async def test_each_read_sees_every_change_committed_before_it(database_url: str) -> None:
    engine = create_engine(database_url)
    await migrate(engine)
    reader = counter_reader_for(engine)
    try:
        first = await reader.read("auth_epoch")
        assert first is not None
        together = await asyncio.gather(*(reader.read("auth_epoch") for _ in range(50)))
        assert set(together) == {first}
        for n in range(1, 6):
            async with engine.begin() as conn:
                await conn.execute(BUMP)
            # Reads made while others are in flight still start after this commit.
            seen = await asyncio.gather(*(reader.read("auth_epoch") for _ in range(5)))
            assert set(seen) == {first + n}
        assert await reader.read("no_such_counter") is None
    finally:
        await reader.close()
        await engine.dispose()
    assert await reader.read("auth_epoch") is None


async def test_a_read_answers_the_requests_that_arrived_before_it_began(database_url: str) -> None:
    engine = create_engine(database_url)
    await migrate(engine)
    reader = counter_reader_for(engine)
    try:
        early = arriving()
        first = await reader.read("auth_epoch", early)
        assert first is not None
        async with engine.begin() as conn:
            await conn.execute(BUMP)
        # A request that arrived before that read began could not have seen this commit.
        assert await reader.read("auth_epoch", early) == first
        # One that arrives after it gets a read that began after it arrived; so does one
        # without a number.
        assert await reader.read("auth_epoch", arriving()) == first + 1
        async with engine.begin() as conn:
            await conn.execute(BUMP)
        assert await reader.read("auth_epoch") == first + 2
        # That last read began after `early` and any request before it arrived.
        assert await reader.read("auth_epoch", early) == first + 2
    finally:
        await reader.close()
        await engine.dispose()


async def test_an_unreachable_database_gives_no_value() -> None:
    reader = PostgresCounterReader("postgresql://postgres@127.0.0.1:1/nowhere")
    try:
        assert await reader.read("auth_epoch") is None
    finally:
        await reader.close()
