"""Signs that someone is using a project's files: the project counts as active (CoCalc's
`touch`), and opening a file is logged (file_use_times reads that log).

Both are throttled from what the database holds, so several hubs sharing it agree."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from calchub.actor import Actor
from calchub.db.tables import accounts, file_access_log, projects
from calchub.errors import Invalid, Unavailable
from calchub.hub import Hub
from calchub.projects.access import check_project_access
from calchub.projects.creation import start_in_background
from calchub.projects.lifecycle import ACTIVITY_RESOLUTION

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
) -> str | None:
    """Record that the account uses the project now: its `last_edited`, the account's entry
    in `last_active`, the idle timer and the account's own `last_active`, each at most every
    TOUCH_INTERVAL (the idle timer every ACTIVITY_RESOLUTION). Returns the project's run
    state, which cannot change before `conn`'s transaction ends (the row stays locked), or
    None when the project is gone."""
    row = (
        await conn.execute(
            select(projects.c.last_active, projects.c.run_state, projects.c.last_activity)
            .where(projects.c.project_id == project_id)
            .with_for_update()
        )
    ).first()
    if row is None:
        return None
    last_active = dict(row.last_active or {})
    if _recent(last_active.get(account_id), now, TOUCH_INTERVAL):
        if row.last_activity is None or now - row.last_activity >= ACTIVITY_RESOLUTION:
            # Another account's use, or a start, may have left the idle timer behind.
            await conn.execute(
                update(projects)
                .where(projects.c.project_id == project_id)
                .values(last_activity=now)
            )
        return str(row.run_state)
    last_active[account_id] = now.isoformat()
    await conn.execute(
        update(projects)
        .where(projects.c.project_id == project_id)
        .values(last_edited=now, last_activity=now, last_active=last_active)
    )
    await conn.execute(
        update(accounts).where(accounts.c.account_id == account_id).values(last_active=now)
    )
    return str(row.run_state)


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
    """touch_project: the caller uses the project now, which starts it when stopped.

    A project the database calls running is not started (nor asked about): its use is noted
    and nothing more, as exec does (see ensure_running)."""
    project = await check_project_access(hub, actor, project_id)
    async with hub.engine.begin() as conn:
        running = (
            await mark_project_used(conn, project.project_id, actor.caller, actor.now) == "running"
        )
    # Said at once: a start that can never happen is not a success.
    if hub.runtime.problem:
        raise Unavailable(hub.runtime.problem)
    if not running:
        start_in_background(hub, project.project_id)


_UNITS = {
    "second": 1,
    "minute": 60,
    "hour": 3600,
    "day": 86400,
    "week": 7 * 86400,
    "month": 30 * 86400,
    "year": 365 * 86400,
}
# Further back than this the log is not read (it is the account's own activity anyway).
MAX_LOOKBACK = timedelta(days=3650)
_INTERVAL = re.compile(r"^\s*(\d{1,9}(?:\.\d{1,6})?)\s*([a-z]+?)s?\s*$")


def parse_interval(text: str) -> timedelta:
    """A PostgreSQL-style interval of one unit, as clients send it (`1 day`, `3 hours`)."""
    match = _INTERVAL.match(text.lower())
    if match is None or match.group(2) not in _UNITS:
        raise Invalid(f"invalid interval '{text[:100]}'")
    seconds = float(match.group(1)) * _UNITS[match.group(2)]
    return timedelta(seconds=min(seconds, MAX_LOOKBACK.total_seconds()))


async def files_accessed(hub: Hub, actor: Actor, interval: str | None) -> list[dict[str, Any]]:
    """The files the caller opened within `interval` (default a day), with their projects'
    titles; nothing for a caller without an account."""
    if actor.account_id is None or actor.project_id is not None:
        return []
    since = actor.now - parse_interval(interval or "1 day")
    log, p = file_access_log.c, projects.c
    async with hub.engine.connect() as conn:
        rows = (
            await conn.execute(
                select(log.filename, log.project_id, p.title)
                .distinct()
                .select_from(file_access_log.join(projects, p.project_id == log.project_id))
                .where(log.account_id == actor.account_id, log.time >= since)
                .order_by(p.title, log.filename, log.project_id)
                .limit(10_000)
            )
        ).all()
    return [{"path": r.filename, "project_id": r.project_id, "title": r.title} for r in rows]
