"""ProjectEdits without a database: a write that fails is logged and the call goes on; one
that cannot get the database keeps the call waiting no longer than its wait, and finishes
(or is stopped at shutdown) on its own. The real writes are tested through the server
(tests/api/test_last_edited.py) and the domain (tests/domain/test_projects.py)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast

import pytest
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from calchub.projects.edits import ProjectEdits

PROJECT = "6a3f1c2e-8a51-4c55-9f0e-2d1b7c9e4a10"


class _Connection:
    def __init__(self, engine: _Engine) -> None:
        self._engine = engine

    async def execute(self, statement: Any, params: dict[str, Any]) -> None:
        self._engine.executed.append(params)


class _Engine:
    """Fails each write with `error`, or holds it until `release` is set."""

    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.release = asyncio.Event()
        self.release.set()
        self.executed: list[dict[str, Any]] = []

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[_Connection]:
        await self.release.wait()
        if self.error is not None:
            raise self.error
        yield _Connection(self)


def _edits(engine: _Engine, wait_s: float = 5.0) -> ProjectEdits:
    return ProjectEdits(cast(AsyncEngine, engine), wait_s=wait_s)


async def test_a_due_edit_is_one_write_and_the_next_is_held_back() -> None:
    engine = _Engine()
    edits = _edits(engine)
    assert edits.due(PROJECT)
    await edits.write(PROJECT)
    assert [p["edited_id"] for p in engine.executed] == [PROJECT]
    assert not edits.due(PROJECT)
    assert edits.due("0b9d1c7e-0d7e-4f8e-9a43-3c2b1a0f9e88")


async def test_a_failed_write_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    engine = _Engine(OperationalError("UPDATE projects", {}, Exception("database is locked")))
    edits = _edits(engine)
    with caplog.at_level(logging.WARNING, logger="calchub.projects"):
        await edits.write(PROJECT)
    assert f"could not record an edit of project {PROJECT}" in caplog.text
    assert "database is locked" in caplog.text
    await edits.close()


async def test_a_write_that_waits_for_the_database_does_not_hold_the_call() -> None:
    engine = _Engine()
    engine.release.clear()  # as a transaction holding the write lock would
    edits = _edits(engine, wait_s=0.01)
    await edits.write(PROJECT)  # returns, with the write still waiting
    assert engine.executed == []
    assert edits.under_way == 1
    engine.release.set()  # the transaction ends: the write goes through on its own
    await asyncio.wait_for(edits.finished(), 10)
    assert [p["edited_id"] for p in engine.executed] == [PROJECT]


async def test_a_cancelled_call_leaves_its_write_going() -> None:
    engine = _Engine()
    engine.release.clear()
    edits = _edits(engine)
    call = asyncio.create_task(edits.write(PROJECT))
    await asyncio.sleep(0)
    call.cancel()  # the client went away
    with pytest.raises(asyncio.CancelledError):
        await call
    engine.release.set()
    await asyncio.wait_for(edits.finished(), 10)
    assert [p["edited_id"] for p in engine.executed] == [PROJECT]


async def test_close_stops_the_writes_under_way() -> None:
    engine = _Engine()
    engine.release.clear()  # never released
    edits = _edits(engine, wait_s=0.01)
    await edits.write(PROJECT)
    await asyncio.wait_for(edits.close(), 10)
    assert engine.executed == []
    assert edits.under_way == 0
