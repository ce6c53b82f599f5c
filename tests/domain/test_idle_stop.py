"""Stopping idle projects: idle ones stop, used ones never do, and the scan runs on one hub
per interval, taken over by another when that hub is gone. Touching a running project only
notes its use; touching a stopped one starts it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest_asyncio
from sqlalchemy import delete, insert, select, update

from calchub.db.passes import claim_pass
from calchub.db.tables import counters, projects, site_licenses
from calchub.db.types import utcnow
from calchub.hub import Hub
from calchub.projects.duties import stop_idle_projects
from calchub.projects.file_activity import touch_project
from calchub.projects.lifecycle import start_project
from calchub.projects.store import get_project
from tests.domain.conftest import MakeProject, Person

PASS = "stop_idle_projects"
DEFAULT_IDLE = timedelta(seconds=1800)  # the site's default_quota_idle_timeout_s


async def _row(hub: Hub, project_id: str) -> Any:
    async with hub.engine.connect() as conn:
        return (
            await conn.execute(select(projects).where(projects.c.project_id == project_id))
        ).one()


async def _running(hub: Hub, project_id: str, unused_for: timedelta, **values: Any) -> None:
    """Start the project, then make it look unused for `unused_for`."""
    async with hub.engine.connect() as conn:
        project = await get_project(conn, project_id)
    assert project is not None
    await start_project(hub, project)
    async with hub.engine.begin() as conn:
        await conn.execute(
            update(projects)
            .where(projects.c.project_id == project_id)
            .values(last_activity=utcnow() - unused_for, **values)
        )


async def _make_pass_due(hub: Hub) -> None:
    """As if the interval had passed since the last scan, whichever hub ran it."""
    async with hub.engine.begin() as conn:
        await conn.execute(delete(counters).where(counters.c.name == f"due:{PASS}"))


@pytest_asyncio.fixture
async def second_hub(hub: Hub) -> AsyncIterator[Hub]:
    """Another hub process of the same install: same database, same folders."""
    other = await Hub.open(hub.settings)
    try:
        yield other
    finally:
        await other.close()


async def test_idle_projects_stop_and_used_ones_keep_running(
    hub: Hub, owner: Person, make_project: MakeProject
) -> None:
    idle, used, upgraded, always = [await make_project(owner) for _ in range(4)]
    await _running(hub, idle, DEFAULT_IDLE + timedelta(minutes=5))
    await _running(hub, used, timedelta(minutes=5))
    # Unused for longer than the default, but its own timeout (an upgrade) is longer still.
    await _running(hub, upgraded, DEFAULT_IDLE + timedelta(minutes=5), settings={"mintime": 3600})
    # A license that keeps the project running turns the idle timeout off.
    license_id = str(uuid.uuid4())
    async with hub.engine.begin() as conn:
        await conn.execute(
            insert(site_licenses).values(
                id=license_id,
                title="always",
                activates=utcnow() - timedelta(days=1),
                quota={"ram": 1, "always_running": True},
            )
        )
    try:
        await _running(hub, always, timedelta(days=3), site_license={license_id: {}})
        await _make_pass_due(hub)
        await stop_idle_projects(hub)
        assert (await _row(hub, always)).run_state == "running"
    finally:
        async with hub.engine.begin() as conn:
            await conn.execute(delete(site_licenses).where(site_licenses.c.id == license_id))
    assert (await _row(hub, idle)).run_state == "opened"
    assert not (await hub.runtime.status(idle)).running
    for kept in (used, upgraded):
        assert (await _row(hub, kept)).run_state == "running"
        assert (await hub.runtime.status(kept)).running
    # The upgrade's extra hour is over: now it stops too.
    async with hub.engine.begin() as conn:
        await conn.execute(
            update(projects)
            .where(projects.c.project_id == upgraded)
            .values(last_activity=utcnow() - DEFAULT_IDLE - timedelta(hours=1, minutes=1))
        )
    await _make_pass_due(hub)
    await stop_idle_projects(hub)
    assert (await _row(hub, upgraded)).run_state == "opened"
    assert (await _row(hub, used)).run_state == "running"


async def test_a_touch_keeps_an_idle_project_running(hub: Hub, owner: Person, project: str) -> None:
    await _running(hub, project, DEFAULT_IDLE + timedelta(minutes=5))
    started_at = (await _row(hub, project)).run_state_time
    await touch_project(hub, owner.actor, project)
    row = await _row(hub, project)
    # Noted, not started again.
    assert (row.run_state, row.run_state_time) == ("running", started_at)
    assert utcnow() - row.last_activity < timedelta(minutes=1)
    await _make_pass_due(hub)
    await stop_idle_projects(hub)
    assert (await _row(hub, project)).run_state == "running"


async def test_touching_a_stopped_project_starts_it(hub: Hub, owner: Person, project: str) -> None:
    assert (await _row(hub, project)).run_state == "opened"
    await touch_project(hub, owner.actor, project)
    # The start runs in the background.
    for _ in range(600):
        if (await _row(hub, project)).run_state == "running":
            break
        await asyncio.sleep(0.05)
    assert (await _row(hub, project)).run_state == "running"
    assert (await hub.runtime.status(project)).running


async def test_one_hub_scans_per_interval_and_another_takes_over(
    hub: Hub, second_hub: Hub, owner: Person, make_project: MakeProject
) -> None:
    first, second = await make_project(owner), await make_project(owner)
    await _make_pass_due(hub)
    await stop_idle_projects(hub)  # this hub scans for this interval
    await _running(hub, first, DEFAULT_IDLE + timedelta(minutes=5))
    await stop_idle_projects(second_hub)  # within the same interval: not its turn
    assert (await _row(hub, first)).run_state == "running"
    # The first hub does not come back; once the interval is over the other one scans.
    await _make_pass_due(hub)
    await _running(hub, second, DEFAULT_IDLE + timedelta(minutes=5))
    await stop_idle_projects(second_hub)
    assert (await _row(hub, first)).run_state == "opened"
    assert (await _row(hub, second)).run_state == "opened"


async def test_the_pass_goes_to_one_hub_per_interval(hub: Hub, second_hub: Hub) -> None:
    name = "test-pass"
    start = datetime(2030, 1, 1, tzinfo=utcnow().tzinfo)
    try:
        # The first to look creates the pass's row and runs it; the other does not.
        assert await claim_pass(hub.engine, name, 15, start)
        assert not await claim_pass(second_hub.engine, name, 15, start)
        assert not await claim_pass(second_hub.engine, name, 15, start + timedelta(seconds=14))
        assert not await claim_pass(hub.engine, name, 15, start + timedelta(seconds=14))
        # Due again: one of them gets it, whichever looks first.
        assert await claim_pass(hub.engine, name, 15, start + timedelta(seconds=15))
        assert not await claim_pass(second_hub.engine, name, 15, start + timedelta(seconds=16))
        # The first hub is gone: the second takes the next interval.
        assert await claim_pass(second_hub.engine, name, 15, start + timedelta(seconds=31))
        assert not await claim_pass(hub.engine, name, 15, start + timedelta(seconds=32))
    finally:
        async with hub.engine.begin() as conn:
            await conn.execute(delete(counters).where(counters.c.name == f"due:{name}"))
