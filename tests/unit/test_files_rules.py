"""The public-path rule and the claiming of copy jobs by several hubs at once."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import insert

from calchub.config import Settings
from calchub.db.engine import create_engine, migrate
from calchub.db.tables import copy_paths
from calchub.db.types import utcnow
from calchub.files.copy_worker import claim_next
from calchub.files.public import is_public
from tests.harness import Loop, throwaway_database


@pytest.mark.parametrize(
    ("path", "public", "expected"),
    [
        ("a.txt", [""], True),
        ("pub", ["pub"], True),
        ("pub/x/y", ["pub"], True),
        ("pubx/y", ["pub"], False),
        ("pub/../secret", ["pub"], False),
        ("pub/..", ["pub"], False),
        ("/etc/passwd", [""], False),
        ("other", ["pub", "one.txt"], False),
        ("x", [], False),
        ("A1/doc1.txt", ["A1/"], True),
        ("A1x/doc1.txt", ["A1/"], False),
    ],
)
def test_public_rule(path: str, public: list[str], expected: bool) -> None:
    assert is_public(path, public) is expected


def _row(**values: Any) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "time": utcnow(),
        "source_project_id": str(uuid.uuid4()),
        "source_path": "a",
        "target_project_id": str(uuid.uuid4()),
        "target_path": "a",
        "overwrite_newer": False,
        "delete_missing": False,
        "backup": False,
        "public": False,
        # Every row names every column: an executemany takes its columns from the first.
        "scheduled": None,
        "started": None,
        "heartbeat": None,
        "finished": None,
        "worker": None,
        **values,
    }


async def _claims(url: str) -> tuple[list[str], set[str]]:
    engine = create_engine(url)
    try:
        await migrate(engine)
        now, old = utcnow(), utcnow() - timedelta(minutes=5)
        due = [_row() for _ in range(5)]
        due += [_row(scheduled=now - timedelta(seconds=1))]
        due += [_row(started=old, heartbeat=old, worker="dead")]
        not_due = [
            _row(scheduled=now + timedelta(hours=1)),
            _row(started=now, heartbeat=now, worker="alive"),
            _row(started=old, heartbeat=old, finished=old),
        ]
        async with engine.begin() as conn:
            await conn.execute(insert(copy_paths), due + not_due)
        hubs = [SimpleNamespace(engine=engine, settings=Settings()) for _ in range(4)]

        async def drain(hub: Any) -> list[str]:
            got = []
            while (row := await claim_next(hub)) is not None:
                got.append(row.id)
            return got

        results = await asyncio.gather(*(drain(hub) for hub in hubs))
        return [i for r in results for i in r], {r["id"] for r in due}
    finally:
        await engine.dispose()


def test_each_due_copy_is_claimed_exactly_once(tmp_path: Path) -> None:
    loop = Loop()
    try:
        with throwaway_database(tmp_path / "claims.db", loop) as url:
            claimed, due = loop.run(_claims(url))
        assert sorted(claimed) == sorted(due)
    finally:
        loop.close()
