"""Project rows and membership."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from calchub.db.tables import project_users, projects
from calchub.db.types import utcnow
from calchub.ids import new_id

# Project uids come from a range far above ordinary system and login users.
UID_BASE = 1_000_000
UID_ATTEMPTS = 20


@dataclass(frozen=True)
class ProjectRow:
    project_id: str
    title: str
    description: str
    compute_image: str
    uid: int
    run_state: str
    run_state_time: datetime
    run_state_error: str | None
    settings: dict[str, Any] | None
    last_activity: datetime | None


def _row(row: Any) -> ProjectRow:
    return ProjectRow(
        project_id=row.project_id,
        title=row.title,
        description=row.description,
        compute_image=row.compute_image,
        uid=row.uid,
        run_state=row.run_state,
        run_state_time=row.run_state_time,
        run_state_error=row.run_state_error,
        settings=row.settings,
        last_activity=row.last_activity,
    )


async def get_project(conn: AsyncConnection, project_id: str) -> ProjectRow | None:
    row = (
        await conn.execute(
            select(projects).where(
                projects.c.project_id == project_id, projects.c.deleted.is_(False)
            )
        )
    ).first()
    return _row(row) if row else None


async def project_with_group(
    conn: AsyncConnection, project_id: str, account_id: str | None
) -> tuple[ProjectRow, str | None] | None:
    """The project and the account's group in it (None when not a member, or no account),
    in one query."""
    if account_id is None:
        project = await get_project(conn, project_id)
        return None if project is None else (project, None)
    membership = project_users.alias("membership")
    query = (
        select(projects, membership.c.group.label("member_group"))
        .select_from(
            projects.outerjoin(
                membership,
                (membership.c.project_id == projects.c.project_id)
                & (membership.c.account_id == account_id),
            )
        )
        .where(projects.c.project_id == project_id, projects.c.deleted.is_(False))
    )
    row = (await conn.execute(query)).first()
    return (_row(row), row.member_group) if row else None


async def member_upgrades(conn: AsyncConnection, project_id: str) -> list[dict[str, Any]]:
    rows = await conn.execute(
        select(project_users.c.upgrades).where(
            project_users.c.project_id == project_id, project_users.c.upgrades.is_not(None)
        )
    )
    return [row.upgrades for row in rows if row.upgrades]


async def insert_project(
    engine: AsyncEngine,
    *,
    owner: str,
    title: str,
    description: str,
    compute_image: str,
    site_license: dict[str, Any] | None,
) -> str:
    """Insert a project owned by `owner`, allocating the next free uid (retrying when another
    hub took the same one at the same moment)."""
    project_id = new_id()
    for _ in range(UID_ATTEMPTS):
        now = utcnow()
        try:
            async with engine.begin() as conn:
                highest = await conn.scalar(select(func.max(projects.c.uid)))
                uid = max(UID_BASE, (highest or UID_BASE - 1) + 1)
                await conn.execute(
                    insert(projects).values(
                        project_id=project_id,
                        title=title,
                        description=description,
                        compute_image=compute_image,
                        created=now,
                        last_edited=now,
                        site_license=site_license,
                        deleted=False,
                        uid=uid,
                        run_state="opened",
                        run_state_time=now,
                    )
                )
                await conn.execute(
                    insert(project_users).values(
                        project_id=project_id,
                        account_id=owner,
                        group="owner",
                        hide=False,
                        added=now,
                    )
                )
            return project_id
        except IntegrityError:
            continue
    raise RuntimeError("could not allocate a uid for the new project")
