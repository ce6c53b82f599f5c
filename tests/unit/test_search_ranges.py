"""SQLite's conditions for the name terms of one user_search item (accounts/search.py),
run on a real SQLite database with the migrated schema: whichever term is taken as the
rarest, they find exactly the accounts where every term starts the first or the last name
(lowered as Python lowers)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
import pytest_asyncio
from sqlalchemy import ColumnElement, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from calchub.accounts import search
from calchub.accounts.search import _prefix_clauses, _ranged_item
from calchub.db.engine import create_engine, migrate
from calchub.db.tables import accounts

NAMES = [
    ("Ada", "Lovelace"),
    ("Adaline", "Love"),
    ("Lovelace", "Ada"),
    ("Ada", "Adaxyz"),
    ("Adaxyz", "Lovelace"),
    ("Grace", "Hopper"),
    ("\u212aelvin", "Sign"),  # the Kelvin sign lowers to an ASCII `k`
    ("Élodie", "Straße"),
    ("Mar%_a", "Lo_ve"),
    (None, "Nameless"),
]
ITEMS = [
    ["ada", "love"],
    ["love", "ada"],
    ["ada", "lovelace"],
    ["ada", "adaxyz"],
    ["adaxyz", "lovelace", "lo"],
    ["ada", "lovelace", "hopper"],
    ["kelvin", "sign"],
    ["élodie", "straß"],
    ["mar%_", "lo_"],
    ["mar", "lox"],
    ["nameless"],
    ["a", "l"],
]


def expected(item: list[str]) -> set[int]:
    return {
        n
        for n, names in enumerate(NAMES)
        if all(any(name and name.lower().startswith(term) for name in names) for term in item)
    }


@pytest_asyncio.fixture(scope="module")
async def engine(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[AsyncEngine]:
    made = create_engine(f"sqlite:///{tmp_path_factory.mktemp('search') / 'search.db'}")
    await migrate(made)
    rows = [
        {
            "account_id": str(uuid.UUID(int=n + 1, version=4)),
            "email_address": f"n{n}@example.org",
            "first_name": first,
            "last_name": last,
            "created": datetime(2026, 1, 1, tzinfo=UTC),
        }
        for n, (first, last) in enumerate(NAMES)
    ]
    async with made.begin() as conn:
        await conn.execute(insert(accounts), rows)
    try:
        yield made
    finally:
        await made.dispose()


async def found(engine: AsyncEngine, condition: ColumnElement[bool]) -> set[int]:
    ids = {str(uuid.UUID(int=n + 1, version=4)): n for n in range(len(NAMES))}
    async with engine.connect() as conn:
        rows = await conn.execute(select(accounts.c.account_id).where(condition))
        return {ids[row[0]] for row in rows}


COLUMNS = [accounts.c.first_name, accounts.c.last_name]


@pytest.mark.parametrize("item", ITEMS, ids=" ".join)
async def test_each_choice_of_the_rarest_term_finds_the_same_accounts(
    engine: AsyncEngine, item: list[str]
) -> None:
    for rarest in item:
        assert await found(engine, _ranged_item(item, rarest, COLUMNS)) == expected(item), rarest


@pytest.mark.parametrize("item", ITEMS, ids=" ".join)
async def test_an_item_searched_as_a_whole_finds_the_same_accounts(
    engine: AsyncEngine, item: list[str]
) -> None:
    async with engine.connect() as conn:
        (condition,) = await _prefix_clauses(conn, [item], COLUMNS)
    assert await found(engine, condition) == expected(item)


@pytest.mark.parametrize("term", ["ada", "love", "kelvin", "élodie", "mar%_", "l", "zzz"])
async def test_a_common_single_term_read_along_recency_finds_the_same_accounts(
    engine: AsyncEngine, term: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A term that DENSE_PREFIX accounts or more start is matched by LIKE alone (the search
    then reads along the recency index); here every term counts as that common."""
    monkeypatch.setattr(search, "DENSE_PREFIX", 1)
    async with engine.connect() as conn:
        (condition,) = await _prefix_clauses(conn, [[term]], COLUMNS)
    assert await found(engine, condition) == expected([term])
