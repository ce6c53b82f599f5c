"""The API-key cache beneath the HTTP tests: which writes move its counter, expiry by the
clock, and what happens when the triggers it relies on are gone. On a real SQLite file."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert, text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from calchub.accounts import key_cache as key_cache_module
from calchub.accounts import keys as keys_module
from calchub.accounts.key_cache import TRIGGERS, KeyCache
from calchub.accounts.keys import create_current_key
from calchub.db.counters import SqliteCounterReader
from calchub.db.engine import create_engine, migrate
from calchub.db.tables import accounts, api_keys
from calchub.db.types import utcnow

ACCOUNT = "7b9a4f0e-1c2d-4e5f-8a9b-0c1d2e3f4a5b"


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(f"sqlite:///{tmp_path / 'keys.db'}")
    await migrate(engine)
    async with engine.begin() as conn:
        await conn.execute(
            insert(accounts).values(
                account_id=ACCOUNT, email_address="k@example.com", created=utcnow()
            )
        )
    try:
        yield engine
    finally:
        await engine.dispose()


def _cache(engine: AsyncEngine) -> KeyCache:
    return KeyCache(engine, SqliteCounterReader(str(engine.url.database)))


async def _epoch(engine: AsyncEngine, name: str = "auth_epoch") -> int:
    reader = SqliteCounterReader(str(engine.url.database))
    try:
        value = await reader.read(name)
    finally:
        await reader.close()
    assert value is not None
    return value


async def _run(engine: AsyncEngine, statement: object) -> None:
    async with engine.begin() as conn:
        await conn.execute(statement)  # type: ignore[call-overload]


async def _new_key(engine: AsyncEngine, **options: object) -> tuple[int, str]:
    async with engine.begin() as conn:
        info, secret = await create_current_key(
            conn,
            ACCOUNT,
            name="k",
            expire=options.get("expire"),  # type: ignore[arg-type]
            project_id=None,
        )
    return info.id, secret


async def test_only_changes_that_can_alter_an_answer_move_the_counter(
    engine: AsyncEngine,
) -> None:
    key_id, _ = await _new_key(engine)
    by_id = api_keys.c.id == key_id
    account = accounts.c.account_id == ACCOUNT
    harmless = [
        update(api_keys).where(by_id).values(last_used=utcnow()),
        update(api_keys).where(by_id).values(name="renamed"),
        update(accounts).where(account).values(first_name="Ada", last_active=utcnow()),
        update(accounts).where(account).values(banned=False),  # unchanged value
    ]
    for statement in harmless:
        before = await _epoch(engine)
        await _run(engine, statement)
        assert await _epoch(engine) == before, statement
    moving = [
        update(api_keys).where(by_id).values(expire=utcnow() + timedelta(days=1)),
        update(accounts).where(account).values(banned=True),
        update(accounts).where(account).values(banned=False),
        update(accounts).where(account).values(groups=["admin"]),
        update(accounts).where(account).values(deleted=True),
        api_keys.delete().where(by_id),
    ]
    for statement in moving:
        before = await _epoch(engine)
        await _run(engine, statement)
        assert await _epoch(engine) > before, statement


async def test_a_cached_key_stops_working_when_its_expiry_passes(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = utcnow()
    _, secret = await _new_key(engine, expire=now + timedelta(hours=1))
    cache = _cache(engine)
    try:
        assert (await cache.lookup(secret)) is not None
        assert (await cache.lookup(secret)) is not None
        later = now + timedelta(hours=2)
        monkeypatch.setattr(key_cache_module, "utcnow", lambda: later)
        monkeypatch.setattr(keys_module, "utcnow", lambda: later)
        assert await cache.lookup(secret) is None
    finally:
        cache.clear()


async def test_answers_come_from_memory_until_the_counter_moves(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, secret = await _new_key(engine)
    lookups = 0
    real = key_cache_module.find_live_key

    async def counted(engine: AsyncEngine, key: str) -> object:
        nonlocal lookups
        lookups += 1
        return await real(engine, key)

    monkeypatch.setattr(key_cache_module, "find_live_key", counted)
    cache = _cache(engine)
    try:
        for _ in range(5):
            assert await cache.lookup(secret) is not None
        assert lookups == 1
        await _run(engine, update(accounts).values(groups=["admin"]))
        owner = await cache.lookup(secret)
        assert owner is not None and owner.is_admin and lookups == 2
    finally:
        cache.clear()


async def test_without_its_triggers_the_cache_looks_every_key_up(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A migration that rebuilds a table on SQLite drops its triggers: then nothing may be
    # served from memory, or a revocation would go unnoticed.
    _, secret = await _new_key(engine)
    await _run(engine, text("DROP TRIGGER auth_epoch_accounts_update"))
    lookups = 0
    real = key_cache_module.find_live_key

    async def counted(engine: AsyncEngine, key: str) -> object:
        nonlocal lookups
        lookups += 1
        return await real(engine, key)

    monkeypatch.setattr(key_cache_module, "find_live_key", counted)
    cache = _cache(engine)
    try:
        for _ in range(3):
            assert await cache.lookup(secret) is not None
        assert lookups == 3
    finally:
        cache.clear()


async def test_every_trigger_exists_after_all_migrations(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        rows = await conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'trigger'"))
        present = {row[0] for row in rows}
    assert present >= TRIGGERS


async def test_every_site_setting_change_moves_its_counter(engine: AsyncEngine) -> None:
    statements = [
        "INSERT INTO server_settings (name, value) VALUES ('help_email', 'a@example.com')",
        "UPDATE server_settings SET value = 'b@example.com' WHERE name = 'help_email'",
        "DELETE FROM server_settings WHERE name = 'help_email'",
    ]
    for statement in statements:
        before = await _epoch(engine, "settings_epoch")
        await _run(engine, text(statement))
        assert await _epoch(engine, "settings_epoch") > before, statement
