"""Starting a project because someone works on one of its documents (CoCalc's
`awaken_project`): at most one start request per project every 30 seconds.

The throttle reads the project's last `action_request`, which every hub sees, rather than
a per-process memory."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from calchub.db.tables import projects
from calchub.db.types import utcnow
from calchub.hub import Hub
from calchub.projects.duties import request_action
from calchub.projects.file_activity import parse_time

log = logging.getLogger("calchub.projects")

START_INTERVAL = timedelta(seconds=30)
_UP = frozenset({"running", "starting"})


def start_is_due(run_state: str, deleted: bool, action_request: Any, now: datetime) -> bool:
    """Whether to ask for a start: the project is not up and no start was asked for in the
    last 30 seconds. (Asking again while a start is under way is harmless: starting a
    running project does nothing.)"""
    if deleted or run_state in _UP:
        return False
    if not isinstance(action_request, dict) or action_request.get("action") != "start":
        return True
    asked = parse_time(action_request.get("time"))
    return asked is None or not timedelta(0) <= now - asked < START_INTERVAL


async def awaken_project(hub: Hub, project_id: str) -> bool:
    """Ask the scheduler to start the project if that is due; True when it was asked.

    Called after the change that prompted it has committed, so a failure here is logged
    rather than reported: the change itself stands."""
    try:
        return await _awaken(hub, project_id)
    except SQLAlchemyError:
        log.exception("could not ask to start project %s", project_id)
        return False


async def _awaken(hub: Hub, project_id: str) -> bool:
    async with hub.engine.connect() as conn:
        row = (
            await conn.execute(
                select(projects.c.run_state, projects.c.deleted, projects.c.action_request).where(
                    projects.c.project_id == project_id
                )
            )
        ).first()
    if row is None or not start_is_due(row.run_state, row.deleted, row.action_request, utcnow()):
        return False
    await request_action(hub, project_id, "start")
    return True
