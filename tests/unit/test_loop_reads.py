"""Reads without the engine's pool: on a SQLite file or PostgreSQL they see every change
committed before them, by any connection, never write, and give what the engine gives;
an in-memory database sends the caller to the engine."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import bindparam, delete, insert, select, text

from calchub.db.engine import create_engine, migrate
from calchub.db.loop_reads import LoopReads, LoopReadUnavailable
from calchub.db.tables import accounts, counters, project_users, projects
from calchub.projects.store import project_with_group, project_with_group_direct

VALUE = select(counters.c.value).where(counters.c.name == bindparam("name"))
BUMP = text("UPDATE counters SET value = value + 1 WHERE name = 'auth_epoch'")


async def test_each_read_sees_every_change_committed_before_it(database_url: str) -> None:
    engine = create_engine(database_url)
    await migrate(engine)
    reads = LoopReads(engine)
    try:
        row = await reads.read(VALUE, {"name": "auth_epoch"})
        assert row is not None
        first = row.value
        for n in range(1, 4):
            async with engine.begin() as conn:
                await conn.execute(BUMP)
            row = await reads.read(VALUE, {"name": "auth_epoch"})
            assert row is not None and row.value == first + n
        assert await reads.read(VALUE, {"name": "no_such_counter"}) is None
        with pytest.raises(LoopReadUnavailable):
            await reads.read(BUMP, {})  # the connection is read-only
        row = await reads.read(VALUE, {"name": "auth_epoch"})  # and works again after a refusal
        assert row is not None and row.value == first + 3
        if engine.dialect.name != "sqlite":
            with pytest.raises(LoopReadUnavailable):
                reads.first(VALUE, {"name": "auth_epoch"})  # not on the loop itself
    finally:
        await reads.close()
        await engine.dispose()
    with pytest.raises(LoopReadUnavailable):
        await reads.read(VALUE, {"name": "auth_epoch"})


async def test_a_project_read_directly_is_the_one_the_engine_reads(database_url: str) -> None:
    engine = create_engine(database_url)
    await migrate(engine)
    reads = LoopReads(engine)
    account, project = str(uuid.uuid4()), str(uuid.uuid4())
    now = datetime.now(UTC).replace(microsecond=123000)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                insert(accounts).values(
                    account_id=account, email_address=f"{account}@example.com", created=now
                )
            )
            await conn.execute(
                insert(projects).values(
                    project_id=project,
                    title="A title",
                    description="",
                    compute_image="default",
                    created=now,
                    deleted=False,
                    uid=2_000_000 + uuid.UUID(project).int % 1_000_000,
                    owner_id=account,
                    run_state="running",
                    run_state_time=now,
                    last_activity=now - timedelta(seconds=5),
                    settings={"cores": 2, "nested": {"a": [1, "two", None]}},
                    quota_inputs={"upgrades": []},
                )
            )
            await conn.execute(
                insert(project_users).values(
                    project_id=project, account_id=account, group="owner", hide=False, added=now
                )
            )
        for who in (account, None, str(uuid.uuid4())):
            direct = await project_with_group_direct(reads, project, who)
            async with engine.connect() as conn:
                pooled = await project_with_group(conn, project, who)
            assert direct == pooled and direct is not None
            assert direct[0].run_state_time == now and direct[0].settings is not None
        assert await project_with_group_direct(reads, str(uuid.uuid4()), account) is None
    finally:
        async with engine.begin() as conn:
            await conn.execute(delete(projects).where(projects.c.project_id == project))
            await conn.execute(delete(accounts).where(accounts.c.account_id == account))
        await reads.close()
        await engine.dispose()


async def test_an_in_memory_database_is_read_through_the_pool() -> None:
    engine = create_engine("sqlite:///:memory:")
    reads = LoopReads(engine)
    try:
        with pytest.raises(LoopReadUnavailable):
            await reads.read(VALUE, {"name": "auth_epoch"})
    finally:
        await reads.close()
        await engine.dispose()


async def test_a_statement_whose_parameters_need_more_is_refused(database_url: str) -> None:
    engine = create_engine(database_url)
    reads = LoopReads(engine)
    converted = select(projects.c.project_id).where(
        projects.c.deleted == bindparam("deleted", type_=projects.c.deleted.type)
    )
    expanded = select(projects.c.project_id).where(projects.c.project_id.in_(["a", "b"]))
    try:
        with pytest.raises(TypeError, match="'deleted'"):
            await reads.read(converted, {"deleted": False})
        with pytest.raises(TypeError):
            await reads.read(expanded, {})
    finally:
        await reads.close()
        await engine.dispose()
