"""The global pool: executes without a project, for pages that show code running. Off by
default; an operator enables it (`jupyter_api_enabled`) and names the one project it runs
in (`jupyter_project_id`, best a dedicated sandbox project without network). Compute time
per hour is capped per account, per anonymous caller and for everyone, as CoCalc caps it
(cache hits are free)."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import func, insert, select

from calchub.actor import Actor
from calchub.db.tables import jupyter_api_log
from calchub.errors import LimitExceeded, Unavailable
from calchub.hub import Hub
from calchub.ids import is_valid_uuid
from calchub.jupyter.settings import GLOBAL_LIMITS
from calchub.projects.store import ProjectRow, get_project

if TYPE_CHECKING:
    from calchub.jupyter.execute import ExecuteCall

LIMITS = GLOBAL_LIMITS
NOT_ENABLED = "Jupyter API is not enabled on this server."
HOUR = timedelta(hours=1)
ACCOUNT_SECONDS = 900
ANONYMOUS_SECONDS = 180
GLOBAL_SECONDS = 18_000


async def pool_project(hub: Hub, actor: Actor) -> ProjectRow:
    site = await hub.site.all()
    project_id = site["jupyter_project_id"].strip().lower()
    if site["jupyter_api_enabled"] != "yes" or not is_valid_uuid(project_id):
        raise Unavailable(NOT_ENABLED)
    async with hub.engine.connect() as conn:
        project = await get_project(conn, project_id)
    if project is None:
        raise Unavailable(NOT_ENABLED)
    return project


def _client(actor: Actor) -> str | None:
    if actor.account_id is not None or actor.project_id is not None:
        return None
    return (actor.ip or "unknown")[:64]


async def check_quota(hub: Hub, actor: Actor) -> None:
    since = actor.now - HOUR
    used = func.coalesce(func.sum(jupyter_api_log.c.total_time_ms), 0)
    recent = jupyter_api_log.c.created > since
    everyone = select(used).where(recent, jupyter_api_log.c.project_id.is_(None))
    checks = [(everyone, GLOBAL_SECONDS)]
    if actor.account_id is not None:
        mine = everyone.where(jupyter_api_log.c.account_id == actor.account_id)
        checks.append((mine, ACCOUNT_SECONDS))
    elif (client := _client(actor)) is not None:
        mine = everyone.where(jupyter_api_log.c.client == client)
        checks.append((mine, ANONYMOUS_SECONDS))
    async with hub.engine.connect() as conn:
        for query, seconds in reversed(checks):
            if int(await conn.scalar(query) or 0) >= seconds * 1000:
                raise LimitExceeded(
                    f"You may use at most {seconds} seconds of compute time per 1 hour. "
                    "Please try again later or do this computation in a project."
                )


async def log_run(hub: Hub, actor: Actor, call: ExecuteCall, key: str, seconds: float) -> None:
    """Record an execute that ran (hub paths only)."""
    async with hub.engine.begin() as conn:
        await conn.execute(
            insert(jupyter_api_log).values(
                created=actor.now,
                account_id=actor.account_id,
                client=_client(actor),
                project_id=call.project_id,
                hash=key,
                kernel=call.kernel[:200],
                total_time_ms=int(seconds * 1000),
            )
        )
