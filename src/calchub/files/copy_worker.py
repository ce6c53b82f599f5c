"""Carrying out copy jobs: every hub claims due `copy_paths` rows and runs them.

A row is claimed with a row lock (skipped by other hubs on PostgreSQL) plus a conditional
UPDATE on the values just read (which is what makes the claim exclusive on SQLite). The
running hub refreshes `heartbeat`; a started row whose heartbeat has gone stale belonged to
a hub that died, and is claimed again, so an interrupted copy is completed later."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update

from calchub.db.tables import copy_paths
from calchub.db.types import utcnow
from calchub.errors import DomainError
from calchub.files.public import not_public_message, public_source_check
from calchub.hub import Hub
from calchub.projects.lifecycle import ensure_running
from calchub.projects.store import get_project
from calchub.runtime import PathRefused, ProjectSpec, RuntimeFailure

log = logging.getLogger("calchub.copies")

# A copy whose hub missed its heartbeats for `copy_stale_after_s` (a setting) is taken over.
# Heartbeats come several times within that delay, so a live copy never looks dead.
HEARTBEATS_PER_STALE_DELAY = 4
MAX_HEARTBEAT_S = 5.0
CLAIM_CANDIDATES = 10

WORKER = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _heartbeat_s(hub: Hub) -> float:
    return min(MAX_HEARTBEAT_S, hub.settings.copy_stale_after_s / HEARTBEATS_PER_STALE_DELAY)


def _due(now: Any, stale_after: timedelta) -> Any:
    fresh = and_(
        copy_paths.c.started.is_(None),
        or_(copy_paths.c.scheduled.is_(None), copy_paths.c.scheduled <= now),
    )
    abandoned = and_(
        copy_paths.c.started.is_not(None),
        or_(copy_paths.c.heartbeat.is_(None), copy_paths.c.heartbeat < now - stale_after),
    )
    return and_(copy_paths.c.finished.is_(None), or_(fresh, abandoned))


async def claim_next(hub: Hub) -> Any | None:
    """Claim the oldest due copy for this hub; None when nothing is due."""
    now = utcnow()
    async with hub.engine.begin() as conn:
        candidates = (
            await conn.execute(
                select(copy_paths.c.id, copy_paths.c.started, copy_paths.c.heartbeat)
                .where(_due(now, timedelta(seconds=hub.settings.copy_stale_after_s)))
                .order_by(copy_paths.c.time, copy_paths.c.id)
                .limit(CLAIM_CANDIDATES)
                .with_for_update(skip_locked=True)
            )
        ).all()
        for cand in candidates:
            claimed = await conn.execute(
                update(copy_paths)
                .where(
                    copy_paths.c.id == cand.id,
                    copy_paths.c.finished.is_(None),
                    copy_paths.c.started.is_not_distinct_from(cand.started),
                    copy_paths.c.heartbeat.is_not_distinct_from(cand.heartbeat),
                )
                .values(worker=WORKER, started=now, heartbeat=now, progress={"state": "running"})
            )
            if claimed.rowcount == 1:
                return (
                    await conn.execute(select(copy_paths).where(copy_paths.c.id == cand.id))
                ).one()
    return None


async def run_due_copies(hub: Hub) -> None:
    """Run due copies until none is left, with at most `hub.copy_runners` at once."""
    slots = hub.copy_runners
    if slots.locked():
        return  # every runner is busy; one of them picks up this row next
    async with slots:
        while (row := await claim_next(hub)) is not None:
            await _execute(hub, row)


def kick(hub: Hub) -> None:
    """Start on a new row now rather than at the scheduler's next round."""
    hub.spawn(run_due_copies(hub), "copy paths")


async def start_due_copies(hub: Hub) -> None:
    """The scheduler's duty: copies run in the background, so a long one never holds up
    the scheduler's other duties."""
    kick(hub)


async def _spec(hub: Hub, project_id: str) -> ProjectSpec:
    async with hub.engine.connect() as conn:
        project = await get_project(conn, project_id)
    if project is None:
        raise RuntimeFailure(f"project {project_id} does not exist")
    return await ensure_running(hub, project)


async def _specs(hub: Hub, source_id: str, target_id: str) -> tuple[ProjectSpec, ProjectSpec]:
    """Both projects, started side by side when they are stopped; the source's failure
    speaks first."""
    if source_id == target_id:
        spec = await _spec(hub, source_id)
        return spec, spec
    src, dst = await asyncio.gather(
        _spec(hub, source_id), _spec(hub, target_id), return_exceptions=True
    )
    for result in (src, dst):
        if isinstance(result, BaseException):
            raise result
    assert isinstance(src, ProjectSpec) and isinstance(dst, ProjectSpec)
    return src, dst


async def _copy(hub: Hub, row: Any, latest: dict[str, int]) -> None:
    src, dst = await _specs(hub, row.source_project_id, row.target_project_id)
    # A public copy is checked again where its source really is, links resolved.
    allowed = (
        await public_source_check(hub.engine, row.source_project_id, row.source_path)
        if row.public
        else None
    )
    await hub.runtime.copy_path(
        src,
        row.source_path,
        dst,
        row.target_path,
        overwrite_newer=row.overwrite_newer,
        delete_missing=row.delete_missing,
        backup=row.backup,
        exclude=list(row.exclude or []),
        timeout_s=row.timeout,
        # Called from the copy's thread; the heartbeat reads whatever came last.
        on_progress=latest.update,
        source_allowed=allowed,
    )


async def _heartbeat(hub: Hub, copy_id: str, began: float, latest: dict[str, int]) -> None:
    while True:
        await asyncio.sleep(_heartbeat_s(hub))
        elapsed = round(time.monotonic() - began, 1)
        progress = {"state": "running", "elapsed_s": elapsed, **dict(latest)}
        async with hub.engine.begin() as conn:
            await conn.execute(
                update(copy_paths)
                .where(copy_paths.c.id == copy_id, copy_paths.c.worker == WORKER)
                .values(heartbeat=utcnow(), progress=progress)
            )


async def _execute(hub: Hub, row: Any) -> None:
    began = time.monotonic()
    latest: dict[str, int] = {}
    beat = asyncio.create_task(_heartbeat(hub, row.id, began, latest))
    error: str | None = None
    try:
        await _copy(hub, row, latest)
    except PathRefused:
        error = not_public_message(row.source_project_id, row.source_path)
    except (RuntimeFailure, DomainError) as exc:
        error = str(exc)
    except Exception as exc:
        log.exception("copy %s failed unexpectedly", row.id)
        error = f"copy failed: {exc}"
    finally:
        beat.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beat
    elapsed = round(time.monotonic() - began, 1)
    state = "failed" if error else "done"
    async with hub.engine.begin() as conn:
        await conn.execute(
            update(copy_paths)
            .where(copy_paths.c.id == row.id, copy_paths.c.worker == WORKER)
            .values(
                finished=utcnow(),
                heartbeat=utcnow(),
                error=error,
                progress={"state": state, "elapsed_s": elapsed, **dict(latest)},
            )
        )
    await hub.copies_finished.pulse()
    log.info("copy %s %s in %.1f s", row.id, state, elapsed)
