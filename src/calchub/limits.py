"""Per-account limits on what an account may do per unit of time, or have at once.

An action is recorded before it is counted, in one transaction that holds the account's row
(PostgreSQL) or the database's write lock (SQLite), so concurrent requests from one account,
on any hub, see each other and cannot all slip under the limit."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from calchub.db.tables import account_actions, accounts
from calchub.errors import LimitExceeded

# Rows older than this are of no use to any limit and are dropped as new ones are written.
KEEP = timedelta(days=1)


async def take(
    conn: AsyncConnection,
    account_id: str,
    action: str,
    *,
    limit: int,
    window: timedelta,
    now: datetime,
    refusal: str,
) -> None:
    """Record one `action` of the account, or raise LimitExceeded(refusal) when `limit` of
    them happened within `window` already. A limit of 0 or less means no limit. Call it
    inside the transaction that does the work, so a refused or failed action is not kept."""
    if limit <= 0:
        return
    await conn.execute(
        select(accounts.c.account_id).where(accounts.c.account_id == account_id).with_for_update()
    )
    a = account_actions.c
    row = {"account_id": account_id, "action": action, "time": now}
    await conn.execute(insert(account_actions).values(**row))
    done = await conn.scalar(
        select(func.count())
        .select_from(account_actions)
        .where(a.account_id == account_id, a.action == action, a.time > now - window)
    )
    if int(done or 0) > limit:
        raise LimitExceeded(refusal)
    await conn.execute(
        delete(account_actions).where(
            a.account_id == account_id, a.action == action, a.time < now - KEEP
        )
    )
