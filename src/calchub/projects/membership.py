"""Who is in a project and what one account has: the caller's projects, a project's members,
restoring a deleted project and changing a member between owner and collaborator. The
decision is calchub.access's rule; the refusals are worded as CoCalc's REST API words them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, insert, select, update

from calchub.access import GROUPS_THAT_READ, GROUPS_THAT_WRITE, project_role
from calchub.actor import Actor
from calchub.db.tables import accounts, project_log, project_users, projects
from calchub.db.types import utcnow
from calchub.errors import Invalid, NotSignedIn, Refused
from calchub.hub import Hub
from calchub.ids import is_valid_uuid, new_id

MAX_LIMIT = 10_000
_NEW_GROUPS = ("owner", "collaborator")


def _project_id(value: str) -> str:
    if not is_valid_uuid(value):
        raise Invalid("project_id must be a valid uuid")
    return value.lower()


async def projects_of(
    hub: Hub, actor: Actor, *, limit: int = 50, account_id: str | None = None
) -> list[dict[str, Any]]:
    """The account's projects that are neither deleted nor hidden by it, most recently
    edited first. Only an admin may ask about another account."""
    if actor.account_id is None or actor.project_id is not None:
        raise NotSignedIn("Must be signed in.")
    whose = actor.account_id
    if account_id is not None:
        if not actor.is_admin:
            raise Refused("The `account_id` field may only be specified by account administrators.")
        if not is_valid_uuid(account_id):
            raise Invalid("account_id must be a valid uuid")
        whose = account_id.lower()
    limit = max(0, min(limit, MAX_LIMIT))
    p, pu = projects.c, project_users.c
    query = (
        select(p.project_id, p.title, p.description, p.name)
        .select_from(projects.join(project_users, pu.project_id == p.project_id))
        .where(
            pu.account_id == whose,
            pu.group.in_(GROUPS_THAT_READ),
            pu.hide.is_(False),
            p.deleted.is_(False),
        )
        .order_by(func.coalesce(p.last_edited, p.created).desc(), p.project_id)
        .limit(limit)
    )
    async with hub.engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    return [
        {
            "project_id": row.project_id,
            "title": row.title,
            "description": row.description,
            "name": row.name,
        }
        for row in rows
    ]


async def restore(hub: Hub, actor: Actor, project_id: str) -> None:
    """Undelete: a collaborator's or an admin's act, as deleting is."""
    pid = _project_id(project_id)
    async with hub.engine.begin() as conn:
        exists = await conn.scalar(
            select(projects.c.project_id).where(projects.c.project_id == pid)
        )
        role = await project_role(conn, actor, pid)
        if exists is None or not role.may_write:
            raise Refused("must be an owner to restore a project")
        await conn.execute(
            update(projects)
            .where(projects.c.project_id == pid)
            .values(deleted=False, last_edited=utcnow())
        )


async def collaborators_of(hub: Hub, actor: Actor, project_id: str) -> list[dict[str, Any]]:
    """Members who may write there (unlisted accounts left out); nothing for an outsider."""
    pid = _project_id(project_id)
    a, pu = accounts.c, project_users.c
    async with hub.engine.connect() as conn:
        if not (await project_role(conn, actor, pid)).may_read:
            return []
        rows = (
            await conn.execute(
                select(a.account_id, a.first_name, a.last_name)
                .select_from(accounts.join(project_users, pu.account_id == a.account_id))
                .where(
                    pu.project_id == pid,
                    pu.group.in_(GROUPS_THAT_WRITE),
                    a.unlisted.is_(False),
                    a.deleted.is_(False),
                )
                .order_by(a.account_id)
            )
        ).all()
    return [
        {"account_id": r.account_id, "first_name": r.first_name, "last_name": r.last_name}
        for r in rows
    ]


async def change_user_type(
    hub: Hub, actor: Actor, project_id: str, target_account_id: str, new_group: str
) -> None:
    """Make a member an owner or a collaborator; owners (or an admin) decide, and a project
    always keeps one owner."""
    pid = _project_id(project_id)
    if not is_valid_uuid(target_account_id):
        raise Invalid("target_account_id must be a valid uuid")
    target = target_account_id.lower()
    if new_group not in _NEW_GROUPS:
        raise Invalid("New group must be either 'owner' or 'collaborator'")
    pu = project_users.c
    async with hub.engine.begin() as conn:
        if not (await project_role(conn, actor, pid)).may_own:
            raise Refused("Only project owners can change user types")
        current = await conn.scalar(
            select(pu.group).where(pu.project_id == pid, pu.account_id == target)
        )
        if current not in _NEW_GROUPS:
            raise Invalid("Target user is not a member of this project")
        if current == new_group:
            return
        if current == "owner":
            owners = await conn.scalar(
                select(func.count()).where(pu.project_id == pid, pu.group == "owner")
            )
            if (owners or 0) <= 1:
                raise Invalid(
                    "Cannot change the last owner to collaborator. At least one owner is required."
                )
        await conn.execute(
            update(project_users)
            .where(pu.project_id == pid, pu.account_id == target)
            .values(group=new_group)
        )
        await conn.execute(
            insert(project_log).values(
                id=new_id(),
                project_id=pid,
                time=utcnow(),
                account_id=actor.account_id,
                event={
                    "event": "change_collaborator_type",
                    "target_account_id": target,
                    "old_group": current,
                    "new_group": new_group,
                },
            )
        )
