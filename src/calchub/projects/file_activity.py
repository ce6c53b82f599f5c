"""Signs that someone is using a project's files: the project counts as active (CoCalc's
`touch`), and opening a file is logged (file_use_times reads that log).

Both are throttled from what the database holds, so several hubs sharing it agree."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from calchub.actor import Actor
from calchub.db.tables import accounts, file_access_log, projects
from calchub.errors import Unavailable
from calchub.hub import Hub
from calchub.projects.access import check_project_access
from calchub.projects.creation import start_in_background

# A project is marked used by an account at most this often.
TOUCH_INTERVAL = timedelta(seconds=30)
# At most one access-log row per account and file in this interval (as CoCalc throttles it).
ACCESS_LOG_INTERVAL = timedelta(seconds=60)


def parse_time(value: Any) -> datetime | None:
    """An ISO timestamp as stored in JSON maps (no offset means UTC), or None."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _recent(value: Any, now: datetime, interval: timedelta) -> bool:
    seen = parse_time(value)
    return seen is not None and timedelta(0) <= now - seen < interval


async def mark_project_used(
    conn: AsyncConnection, project_id: str, account_id: str, now: datetime
) -> bool:
    """Record that the account uses the project now: its `last_edited`, the account's entry
    in `last_active`, the idle timer and the account's own `last_active`. False when it was
    recorded moments ago (or the project is gone)."""
    row = (
        await conn.execute(
            select(projects.c.last_active)
            .where(projects.c.project_id == project_id)
            .with_for_update()
        )
    ).first()
    if row is None:
        return False
    last_active = dict(row.last_active or {})
    if _recent(last_active.get(account_id), now, TOUCH_INTERVAL):
        return False
    last_active[account_id] = now.isoformat()
    await conn.execute(
        update(projects)
        .where(projects.c.project_id == project_id)
        .values(last_edited=now, last_activity=now, last_active=last_active)
    )
    await conn.execute(
        update(accounts).where(accounts.c.account_id == account_id).values(last_active=now)
    )
    return True


async def log_file_access(
    conn: AsyncConnection, project_id: str, account_id: str, filename: str, now: datetime
) -> bool:
    """Add a file-access row unless the same one was added within the interval."""
    recent = await conn.scalar(
        select(file_access_log.c.id)
        .where(
            file_access_log.c.project_id == project_id,
            file_access_log.c.account_id == account_id,
            file_access_log.c.filename == filename,
            file_access_log.c.time > now - ACCESS_LOG_INTERVAL,
        )
        .limit(1)
    )
    if recent is not None:
        return False
    await conn.execute(
        insert(file_access_log).values(
            project_id=project_id, account_id=account_id, filename=filename, time=now
        )
    )
    return True


async def touch_project(hub: Hub, actor: Actor, project_id: str) -> None:
    """touch_project: the caller uses the project now, which starts it when stopped."""
    project = await check_project_access(hub, actor, project_id)
    async with hub.engine.begin() as conn:
        await mark_project_used(conn, project.project_id, actor.caller, actor.now)
    # Said at once: a start that can never happen is not a success.
    if hub.runtime.problem:
        raise Unavailable(hub.runtime.problem)
    start_in_background(hub, project.project_id)
