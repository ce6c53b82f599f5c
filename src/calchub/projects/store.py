"""Project rows and membership."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from calchub.db.loop_reads import LoopReads
from calchub.db.tables import counters, project_users, projects
from calchub.db.types import utcnow
from calchub.ids import new_id

# Project uids come from a range far above ordinary system and login users.
UID_BASE = 1_000_000
UID_COUNTER = "project_uid"
# This install's block of uids (see calchub.installs, which records it).
UID_BLOCK = "install_uid_block"
UID_BLOCK_SIZE = 1_000_000


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
    owner_id: str | None
    # See projects/quota_inputs.py.
    quota_version: int = 0
    quota_inputs: dict[str, Any] | None = None


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
        owner_id=row.owner_id,
        quota_version=row.quota_version,
        quota_inputs=row.quota_inputs,
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


async def running_projects_idle_since(conn: AsyncConnection, cutoff: datetime) -> list[ProjectRow]:
    """The running projects not used since `cutoff` (never used: not since they started)."""
    rows = await conn.execute(
        select(projects).where(
            projects.c.run_state == "running",
            projects.c.deleted.is_(False),
            # Spelt out rather than coalesce(), so that the (run_state, last_activity) index
            # serves the common case.
            or_(
                projects.c.last_activity < cutoff,
                and_(projects.c.last_activity.is_(None), projects.c.run_state_time < cutoff),
            ),
        )
    )
    return [_row(row) for row in rows]


_membership = project_users.alias("membership")
# The columns a ProjectRow holds: a read converts each column it selects (JSON, times).
_ROW_COLUMNS = [projects.c[field.name] for field in fields(ProjectRow)]
# Built once: constructing the join costs more than running it on SQLite.
_PROJECT_WITH_GROUP = (
    select(*_ROW_COLUMNS, _membership.c.group.label("member_group"))
    .select_from(
        projects.outerjoin(
            _membership,
            (_membership.c.project_id == projects.c.project_id)
            & (_membership.c.account_id == bindparam("account_id")),
        )
    )
    .where(projects.c.project_id == bindparam("project_id"), projects.c.deleted.is_(False))
)


async def project_with_group(
    conn: AsyncConnection, project_id: str, account_id: str | None
) -> tuple[ProjectRow, str | None] | None:
    """The project and the account's group in it (None when not a member, or no account),
    in one query."""
    found = await conn.execute(_PROJECT_WITH_GROUP, _with_group_params(project_id, account_id))
    return _with_group(found.first())


async def project_with_group_direct(
    reads: LoopReads, project_id: str, account_id: str | None
) -> tuple[ProjectRow, str | None] | None:
    """`project_with_group` read without the engine (calchub/db/loop_reads.py); raises
    LoopReadUnavailable when it must go through the engine instead."""
    params = _with_group_params(project_id, account_id)
    return _with_group(await reads.read(_PROJECT_WITH_GROUP, params))


def _with_group_params(project_id: str, account_id: str | None) -> dict[str, Any]:
    # No account: `account_id = NULL` matches no membership, so the group is None.
    return {"project_id": project_id, "account_id": account_id}


def _with_group(row: Any) -> tuple[ProjectRow, str | None] | None:
    return (_row(row), row.member_group) if row else None


async def member_upgrades(conn: AsyncConnection, project_id: str) -> list[dict[str, Any]]:
    rows = await conn.execute(
        select(project_users.c.upgrades).where(
            project_users.c.project_id == project_id, project_users.c.upgrades.is_not(None)
        )
    )
    return [row.upgrades for row in rows if row.upgrades]


async def next_uid(conn: AsyncConnection) -> int:
    """The next project uid, from a counter every hub advances atomically."""
    uid = await conn.scalar(
        update(counters)
        .where(counters.c.name == UID_COUNTER)
        .values(value=counters.c.value + 1)
        .returning(counters.c.value)
    )
    if uid is None:
        raise RuntimeError("the project uid counter is missing (run `calchub db upgrade`)")
    block = await conn.scalar(select(counters.c.value).where(counters.c.name == UID_BLOCK))
    if block is not None and uid >= (block + 1) * UID_BLOCK_SIZE:
        # Beyond the block, uids would be another install's on this machine.
        raise RuntimeError("this site has used up its block of project uids")
    return max(UID_BASE, int(uid))


async def insert_project(
    conn: AsyncConnection,
    *,
    owner: str,
    title: str,
    description: str,
    compute_image: str,
    site_license: dict[str, Any] | None,
) -> str:
    """Insert a project owned by `owner` with a uid of its own."""
    project_id = new_id()
    now = utcnow()
    uid = await next_uid(conn)
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
            owner_id=owner,
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
