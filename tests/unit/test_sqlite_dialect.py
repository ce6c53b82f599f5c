"""SQLite's dialect ends a transaction on the driver only when one is open: a connection
that only read goes back to the pool without a hop to aiosqlite's thread, and a write left
uncommitted is still rolled back."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiosqlite
import pytest
import pytest_asyncio
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from calchub.db.engine import create_engine


@pytest_asyncio.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    made = create_engine(f"sqlite:///{tmp_path / 'dialect.db'}")
    async with made.begin() as conn:
        await conn.execute(text("CREATE TABLE things (name TEXT)"))
    try:
        yield made
    finally:
        await made.dispose()


@pytest.fixture
def ends(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Each rollback and commit that reaches the driver."""
    seen: list[str] = []
    rollback, commit = aiosqlite.Connection.rollback, aiosqlite.Connection.commit

    async def counted_rollback(self: aiosqlite.Connection) -> None:
        seen.append("rollback")
        await rollback(self)

    async def counted_commit(self: aiosqlite.Connection) -> None:
        seen.append("commit")
        await commit(self)

    monkeypatch.setattr(aiosqlite.Connection, "rollback", counted_rollback)
    monkeypatch.setattr(aiosqlite.Connection, "commit", counted_commit)
    return seen


async def _names(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as conn:
        return [row.name for row in await conn.execute(text("SELECT name FROM things"))]


async def test_reads_end_without_reaching_the_driver(engine: AsyncEngine, ends: list[str]) -> None:
    assert await _names(engine) == []
    async with engine.begin() as conn:
        await conn.execute(text("SELECT count(*) FROM things"))
    async with engine.connect():
        pass
    assert ends == []


async def test_a_write_is_committed_and_an_uncommitted_one_rolled_back(
    engine: AsyncEngine, ends: list[str]
) -> None:
    async with engine.begin() as conn:
        await conn.execute(text("INSERT INTO things VALUES ('kept')"))
    assert ends == ["commit"]
    async with engine.connect() as conn:
        await conn.execute(text("INSERT INTO things VALUES ('dropped')"))
    assert ends == ["commit", "rollback"]
    with pytest.raises(RuntimeError):
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO things VALUES ('failed')"))
            raise RuntimeError("the block fails")
    assert ends == ["commit", "rollback", "rollback"]
    assert await _names(engine) == ["kept"]
