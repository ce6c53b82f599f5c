"""The projects' scheduled duties: stop idle projects, carry out `action_request`s, and notice
projects that ended on their own for a reason the runtime knows (a cluster node failed).

Each duty is claimed with a conditional UPDATE, so with several hubs on one database every
project is stopped, and every request carried out, exactly once. The idle scan itself runs
on one hub per interval (db/passes.py)."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update

from calchub.db.passes import claim_pass
from calchub.db.tables import projects
from calchub.db.types import utcnow
from calchub.errors import DomainError
from calchub.hub import Hub
from calchub.projects.lifecycle import project_spec, restart_project, start_project, stop_project
from calchub.projects.quotas import default_quota
from calchub.projects.store import get_project, running_projects_idle_since
from calchub.runtime import RuntimeFailure

log = logging.getLogger("calchub.projects")

ACTIONS = ("start", "stop", "restart")


async def request_action(hub: Hub, project_id: str, action: str) -> None:
    """Record a start/stop/restart request; a hub's scheduler carries it out."""
    if action not in ACTIONS:
        raise ValueError(f"action must be one of {', '.join(ACTIONS)}")
    async with hub.engine.begin() as conn:
        await conn.execute(
            update(projects)
            .where(projects.c.project_id == project_id)
            .values(
                action_request={"action": action, "time": utcnow().isoformat()},
                action_state="pending",
            )
        )
    hub.wake_scheduler()


async def stop_idle_projects(hub: Hub) -> None:
    """Stop the running projects unused for longer than their quota's idle timeout. One hub
    per interval scans (the others skip it), and the scan reads only the projects unused for
    longer than the site's default timeout, the shortest any project has: upgrades (`mintime`)
    only lengthen it, and licenses only turn it off. Their own timeouts come from the quota
    inputs kept in their rows, so checking a candidate costs no further query."""
    interval = hub.settings.scheduler_interval_s
    if not await claim_pass(hub.engine, "stop_idle_projects", interval, utcnow()):
        return
    site = await hub.site.all()
    now = utcnow()
    shortest = timedelta(seconds=max(0, default_quota(site).idle_timeout_s))
    async with hub.engine.connect() as conn:
        candidates = await running_projects_idle_since(conn, now - shortest)
    for project in candidates:
        spec = await project_spec(hub, project, site)
        seen = project.last_activity or project.run_state_time
        if spec.quota.idle_timeout_s == 0:  # never stopped for idleness (always running)
            continue
        if now - seen < timedelta(seconds=spec.quota.idle_timeout_s):
            continue
        # The claim fails if the project was used (or restarted) since we looked.
        unchanged = (
            projects.c.last_activity.is_(None)
            if project.last_activity is None
            else projects.c.last_activity == project.last_activity
        )
        if not await _claim_running(hub, project, unchanged, run_state="stopping"):
            continue  # another hub got there first, or the project was used meanwhile
        log.info("stopping idle project %s", project.project_id)
        try:
            await stop_project(hub, project.project_id)
        except RuntimeFailure:
            log.exception("could not stop idle project %s", project.project_id)


async def notice_ended_projects(hub: Hub) -> None:
    """A project the database calls running whose runtime says it ended, and why, is
    recorded as stopped with that reason (in `run_state_error`) rather than silently lost."""
    if hub.runtime.problem:
        return
    async with hub.engine.connect() as conn:
        rows = (
            await conn.execute(
                select(projects.c.project_id, projects.c.run_state_time).where(
                    projects.c.run_state == "running"
                )
            )
        ).all()
    if not rows:
        return
    try:
        found = await hub.runtime.statuses([row.project_id for row in rows])
    except RuntimeFailure:
        log.exception("could not ask for the state of the running projects")
        return
    for row in rows:
        status = found[row.project_id]
        if status.running or not status.reason:
            continue
        if await _claim_running(hub, row, run_state="opened", run_state_error=status.reason):
            log.warning("project %s stopped: %s", row.project_id, status.reason)


async def _claim_running(hub: Hub, row: Any, *conditions: Any, **values: Any) -> bool:
    """Move a project on from "running", unless it changed since `row` was read (or
    `conditions` no longer hold): another hub got there first."""
    async with hub.engine.begin() as conn:
        claimed = await conn.execute(
            update(projects)
            .where(
                projects.c.project_id == row.project_id,
                projects.c.run_state == "running",
                projects.c.run_state_time == row.run_state_time,
                *conditions,
            )
            .values(run_state_time=utcnow(), **values)
        )
    return claimed.rowcount == 1


async def run_action_requests(hub: Hub) -> None:
    async with hub.engine.connect() as conn:
        pending = (
            await conn.scalars(
                select(projects.c.project_id).where(projects.c.action_state == "pending")
            )
        ).all()
    for project_id in pending:
        async with hub.engine.begin() as conn:
            claimed = await conn.execute(
                update(projects)
                .where(projects.c.project_id == project_id, projects.c.action_state == "pending")
                .values(action_state="running")
            )
            request: dict[str, Any] = (
                await conn.scalar(
                    select(projects.c.action_request).where(projects.c.project_id == project_id)
                )
                or {}
            )
        if claimed.rowcount != 1:
            continue
        request = {**request, "started": utcnow().isoformat()}
        error: str | None = None
        try:
            await _perform(hub, project_id, str(request.get("action")))
        except (RuntimeFailure, DomainError, ValueError) as exc:
            error = str(exc)
            log.warning("action %s on %s failed: %s", request.get("action"), project_id, exc)
        request["finished"] = utcnow().isoformat()
        if error:
            request["err"] = error
        async with hub.engine.begin() as conn:
            await conn.execute(
                update(projects)
                .where(projects.c.project_id == project_id)
                .values(action_request=request, action_state="done")
            )


async def _perform(hub: Hub, project_id: str, action: str) -> None:
    if action == "stop":
        await stop_project(hub, project_id)
        return
    if action == "restart":
        await restart_project(hub, project_id)
        return
    if action != "start":
        raise ValueError(f"unknown action '{action}'")
    async with hub.engine.connect() as conn:
        project = await get_project(conn, project_id)
    if project is not None:
        await start_project(hub, project)
