"""Copy jobs as durable `copy_paths` rows: create, wait for, look up, list and cancel.

Every copy is a row first and is carried out by whichever hub claims it
(`calchub.files.copy_worker`), so a copy survives the hub that accepted it."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from calchub.db.tables import copy_paths
from calchub.db.types import utcnow
from calchub.locks import Pulses

HISTORY_PATTERN = "*.sage-history"
WAIT_POLL_S = 0.2


@dataclass(frozen=True)
class CopyJob:
    source_project_id: str
    source_path: str
    target_project_id: str
    target_path: str
    overwrite_newer: bool = False
    delete_missing: bool = False
    backup: bool = False
    public: bool = False
    timeout: int | None = None
    exclude: tuple[str, ...] = ()
    scheduled: datetime | None = None
    account_id: str | None = None


class CopyNotFinished(Exception):
    """Raised by `wait_until_finished` when the wait runs out first."""


async def insert_copy(engine: AsyncEngine, job: CopyJob) -> str:
    copy_id = str(uuid.uuid4())
    async with engine.begin() as conn:
        await conn.execute(
            insert(copy_paths).values(
                id=copy_id,
                time=utcnow(),
                account_id=job.account_id,
                source_project_id=job.source_project_id,
                source_path=job.source_path,
                target_project_id=job.target_project_id,
                target_path=job.target_path,
                overwrite_newer=job.overwrite_newer,
                delete_missing=job.delete_missing,
                backup=job.backup,
                public=job.public,
                timeout=job.timeout,
                exclude=list(job.exclude) or None,
                scheduled=job.scheduled,
            )
        )
    return copy_id


async def wait_until_finished(
    engine: AsyncEngine, copy_id: str, timeout_s: float, finished_here: Pulses
) -> str | None:
    """The copy's error (None on success) once it finished. Polling the row, rather than
    waiting on this hub's task, also sees copies another hub carries out; a copy this hub
    finishes (`finished_here`) ends the wait at once."""
    deadline = time.monotonic() + timeout_s
    while True:
        seen = finished_here.count
        async with engine.connect() as conn:
            row = (
                await conn.execute(
                    select(copy_paths.c.finished, copy_paths.c.error).where(
                        copy_paths.c.id == copy_id
                    )
                )
            ).first()
        if row is None:
            return "copy operation was deleted before it finished"
        if row.finished is not None:
            return None if row.error is None else str(row.error)
        if time.monotonic() > deadline:
            raise CopyNotFinished(copy_id)
        await finished_here.wait_past(seen, WAIT_POLL_S)


def op_object(row: Any) -> dict[str, Any]:
    """A row as copy_path_status shows it."""
    return {
        "copy_path_id": row.id,
        "time": row.time,
        "source_project_id": row.source_project_id,
        "source_path": row.source_path,
        "target_project_id": row.target_project_id,
        "target_path": row.target_path,
        "overwrite_newer": row.overwrite_newer,
        "delete_missing": row.delete_missing,
        "backup": row.backup,
        "started": row.started,
        "finished": row.finished,
        "scheduled": row.scheduled,
        "error": row.error,
        "exclude": row.exclude,
        "progress": row.progress,
    }


async def get_copy(engine: AsyncEngine, copy_id: str) -> Any | None:
    async with engine.connect() as conn:
        return (await conn.execute(select(copy_paths).where(copy_paths.c.id == copy_id))).first()


@dataclass(frozen=True)
class CopyFilter:
    source_project_id: str | None = None
    target_project_id: str | None = None
    source_path: str | None = None
    pending: bool = True
    failed: bool = False
    limit: int = 1000
    offset: int = 0


async def list_copies(engine: AsyncEngine, query: CopyFilter) -> list[Any]:
    stmt = select(copy_paths)
    if query.source_project_id is not None:
        stmt = stmt.where(copy_paths.c.source_project_id == query.source_project_id)
    if query.target_project_id is not None:
        stmt = stmt.where(copy_paths.c.target_project_id == query.target_project_id)
    if query.source_path is not None:
        stmt = stmt.where(copy_paths.c.source_path == query.source_path)
    if query.failed:
        stmt = stmt.where(copy_paths.c.error.is_not(None), copy_paths.c.finished.is_not(None))
    elif query.pending:
        stmt = stmt.where(copy_paths.c.finished.is_(None))
    else:
        stmt = stmt.where(copy_paths.c.finished.is_not(None))
    stmt = stmt.order_by(copy_paths.c.time.desc(), copy_paths.c.id)
    stmt = stmt.limit(query.limit).offset(query.offset)
    async with engine.connect() as conn:
        return list((await conn.execute(stmt)).all())


async def delete_scheduled(engine: AsyncEngine, copy_id: str) -> bool:
    """Cancel a scheduled copy no hub has started; False when there is none such."""
    async with engine.begin() as conn:
        result = await conn.execute(
            delete(copy_paths).where(
                and_(
                    copy_paths.c.id == copy_id,
                    copy_paths.c.scheduled.is_not(None),
                    copy_paths.c.started.is_(None),
                    copy_paths.c.finished.is_(None),
                )
            )
        )
    return result.rowcount == 1
