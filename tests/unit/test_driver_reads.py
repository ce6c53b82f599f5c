"""Rows read on the held connection's driver (db/driver_reads.py), on the database under test:
the same values, types and column names SQLAlchemy's own execution gives, inside a
transaction as outside one, and statements it must run itself still answer."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from calchub.db.driver_reads import read_rows
from calchub.db.engine import create_engine, migrate
from calchub.db.tables import accounts
from calchub.db.types import utcnow

IDS = ["5d1c0c1e-0000-4000-8000-00000000000" + str(n) for n in range(3)]


async def _both(conn: AsyncConnection, statement: Any) -> tuple[list[Any], list[Any]]:
    ours = await read_rows(conn, statement)
    theirs = list(await conn.execute(statement))
    return ours, theirs


async def test_rows_are_what_sqlalchemy_gives(database_url: str) -> None:
    engine = create_engine(database_url)
    await migrate(engine)
    now = utcnow()
    try:
        async with engine.begin() as conn:
            for n, account_id in enumerate(IDS):
                await conn.execute(
                    insert(accounts).values(
                        account_id=account_id,
                        email_address=f"rows{n}@example.com",
                        first_name=f"Ada{n}",
                        created=now - timedelta(days=n),
                        groups=["admin"] if n == 0 else [],
                        banned=n == 1,
                        other_settings={"n": n, "nested": {"list": [1, "two", None]}},
                    )
                )
        a = accounts.c
        columns = (a.account_id, a.first_name, a.created, a.groups, a.banned, a.other_settings)
        shaped = select(*columns).where(a.email_address.like("rows%")).order_by(a.created)
        async with engine.connect() as conn:
            for statement in (
                shaped,
                shaped.where(a.account_id == IDS[1]),
                # An expanded list: SQLAlchemy runs it.
                shaped.where(a.account_id.in_(IDS[:2])),
                select(a.account_id).where(a.account_id == "none"),
            ):
                ours, theirs = await _both(conn, statement)
                assert [tuple(row) for row in ours] == [tuple(row) for row in theirs]
                assert all(row._fields == theirs[0]._fields for row in ours)
            by_id = {row.account_id: row for row in await read_rows(conn, shaped)}
            assert {type(row.created) for row in by_id.values()} == {type(now)}
            assert by_id[IDS[0]].groups == ["admin"] and by_id[IDS[1]].groups == []
            assert by_id[IDS[1]].banned is True and by_id[IDS[0]].banned is False
            assert by_id[IDS[2]].other_settings == {"n": 2, "nested": {"list": [1, "two", None]}}
        # Inside a transaction: the transaction's own uncommitted rows are seen.
        async with engine.begin() as conn:
            renamed = accounts.update().where(a.account_id == IDS[2]).values(first_name="Eve")
            await conn.execute(renamed)
            (row,) = await read_rows(conn, select(a.first_name).where(a.account_id == IDS[2]))
            assert row.first_name == "Eve"
            await conn.rollback()
    finally:
        async with engine.begin() as conn:
            await conn.execute(accounts.delete().where(accounts.c.account_id.in_(IDS)))
        await engine.dispose()
