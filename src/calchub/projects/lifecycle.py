"""Run state: opened -> starting -> running -> stopping -> opened, driven by the runtime.

The database holds the state every hub sees; the runtime is the ground truth for whether
processes exist, so each use re-checks it (a sandbox dies with the hub that started it)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from calchub.db.tables import accounts, projects
from calchub.db.types import utcnow
from calchub.errors import LimitExceeded, Unavailable
from calchub.hub import Hub
from calchub.projects.quotas import default_quota, effective_quota
from calchub.projects.store import ProjectRow, get_project
from calchub.runtime import NetworkRules, ProjectSpec, RuntimeFailure, SandboxUnavailable
from calchub.runtime.network import parse_ranges

log = logging.getLogger("calchub.projects")

# Recording activity on every call would turn reads into writes; this is precise enough for
# idle timeouts measured in minutes.
ACTIVITY_RESOLUTION = timedelta(seconds=10)


async def project_spec(
    hub: Hub, project: ProjectRow, site: dict[str, str] | None = None
) -> ProjectSpec:
    """`site` is the site settings' values, when the caller has read them already."""
    inputs = await hub.quota_inputs.get(project)
    site = site if site is not None else await hub.site.all()
    quota = effective_quota(
        default_quota(site), project.settings, inputs.upgrades, inputs.license_quotas
    )
    rules = NetworkRules()
    if quota.network and site["project_network"] != "nat":
        # Projects reach the network only when an operator chose so.
        quota = replace(quota, network=False)
    elif quota.network:
        rules = _network_rules(site)
    return ProjectSpec(
        project_id=project.project_id, uid=project.uid, quota=quota, network_rules=rules
    )


def _network_rules(site: dict[str, str]) -> NetworkRules:
    try:
        return NetworkRules(
            deny=parse_ranges(site["project_network_deny"], "project_network_deny"),
            allow=parse_ranges(site["project_network_allow"], "project_network_allow"),
        )
    except ValueError as exc:
        raise Unavailable(f"the site's network settings are invalid: {exc}") from exc


async def set_state(
    hub: Hub, project_id: str, state: str, error: str | None = None, *, active: bool = False
) -> None:
    """`active`: the project is in use now, which the same write records."""
    now = utcnow()
    values: dict[str, object] = {
        "run_state": state,
        "run_state_time": now,
        "run_state_error": error,
    }
    if active:
        values["last_activity"] = now
    async with hub.engine.begin() as conn:
        await conn.execute(
            update(projects).where(projects.c.project_id == project_id).values(values)
        )


async def record_activity(hub: Hub, project: ProjectRow) -> None:
    now = utcnow()
    if project.last_activity and now - project.last_activity < ACTIVITY_RESOLUTION:
        return
    async with hub.engine.begin() as conn:
        await conn.execute(
            update(projects)
            .where(projects.c.project_id == project.project_id)
            .values(last_activity=now)
        )


async def note_use_if_running(conn: AsyncConnection, project_id: str, now: datetime) -> bool:
    """Record the use of a project the database says is running, and say whether it was.
    The row is locked until `conn`'s transaction ends, so the idle stop's claim, which needs
    the activity it read, cannot slip in between; the activity is written only when the last
    one is older than ACTIVITY_RESOLUTION (a write costs the database far more than a read)."""
    row = (
        await conn.execute(
            select(projects.c.run_state, projects.c.last_activity)
            .where(projects.c.project_id == project_id)
            .with_for_update()
        )
    ).first()
    if row is None or row.run_state != "running":
        return False
    if row.last_activity is None or now - row.last_activity >= ACTIVITY_RESOLUTION:
        await conn.execute(
            update(projects).where(projects.c.project_id == project_id).values(last_activity=now)
        )
    return True


async def start_project(
    hub: Hub, project: ProjectRow, site: dict[str, str] | None = None
) -> ProjectSpec:
    """Start the project unless it already runs; returns its spec. A project this marks
    running is marked active too (the idle timer starts then). `site` is the site
    settings' values, when the caller has read them already."""
    if hub.runtime.problem:
        raise SandboxUnavailable(hub.runtime.problem)
    async with hub.start_locks.hold(project.project_id):
        site = site if site is not None else await hub.site.all()
        spec = await project_spec(hub, project, site)
        status = await hub.runtime.status(project.project_id)
        if status.running:
            if project.run_state != "running":
                await set_state(hub, project.project_id, "running", active=True)
            return spec
        await _check_running_limit(hub, project, int(site["max_running_projects_per_account"]))
        # Written while the sandbox starts; each later state waits for it, so that it
        # never lands after them.
        starting = asyncio.create_task(set_state(hub, project.project_id, "starting"))
        try:
            try:
                await hub.runtime.start(spec)
            finally:
                await starting
        except RuntimeFailure as exc:
            await set_state(hub, project.project_id, "opened", str(exc))
            raise
        await set_state(hub, project.project_id, "running", active=True)
        log.info("started project %s (uid %s)", project.project_id, project.uid)
        return spec


async def _check_running_limit(hub: Hub, project: ProjectRow, most: int) -> None:
    """One owner's projects may not take more than `most` of the machine at once."""
    if most <= 0 or project.owner_id is None:
        return
    async with hub.engine.connect() as conn:
        groups = await conn.scalar(
            select(accounts.c.groups).where(accounts.c.account_id == project.owner_id)
        )
        if "admin" in (groups or []):
            return
        running = await conn.scalar(
            select(func.count())
            .select_from(projects)
            .where(
                projects.c.owner_id == project.owner_id,
                projects.c.project_id != project.project_id,
                projects.c.run_state.in_(("starting", "running")),
            )
        )
    if int(running or 0) >= most:
        raise LimitExceeded(
            f"the owner of this project has {most} projects running, the most this site "
            "allows at once; stop one of them first"
        )


async def ensure_running(
    hub: Hub, project: ProjectRow, site: dict[str, str] | None = None
) -> ProjectSpec:
    """Start on demand (exec and file access start a stopped project) and note the use.

    When the database already says "running" the runtime is not asked first: its own calls
    start a project whose processes have gone (its hub restarted, say), so the check would
    only add a round trip to every call."""
    if project.run_state == "running" and not hub.runtime.problem:
        spec = await project_spec(hub, project, site)
        await record_activity(hub, project)
        return spec
    # Noted as active by the start: the row read before it is out of date now.
    return await start_project(hub, project, site)


async def stop_project(hub: Hub, project_id: str) -> None:
    await set_state(hub, project_id, "stopping")
    try:
        await hub.runtime.stop(project_id)
    except RuntimeFailure as exc:
        await set_state(hub, project_id, "opened", str(exc))
        raise
    await set_state(hub, project_id, "opened")
    log.info("stopped project %s", project_id)


async def restart_project(hub: Hub, project_id: str) -> None:
    await stop_project(hub, project_id)
    async with hub.engine.connect() as conn:
        project = await get_project(conn, project_id)
    if project is not None:
        await start_project(hub, project)
