"""Who may manage an organization: a site admin, or one of the organization's admins."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from calchub.actor import Actor
from calchub.db.tables import organization_admins, organizations
from calchub.errors import NotSignedIn, Refused

NOT_ALLOWED = "user must be an admin of the organization or site-admin"


async def is_org_admin(conn: AsyncConnection, account_id: str, name: str) -> bool:
    found = await conn.scalar(
        select(organization_admins.c.account_id)
        .join(
            organizations,
            organizations.c.organization_id == organization_admins.c.organization_id,
        )
        .where(organizations.c.name == name, organization_admins.c.account_id == account_id)
    )
    return found is not None


async def may_manage(conn: AsyncConnection, actor: Actor, name: str) -> bool:
    if actor.account_id is None:
        return False
    return actor.is_admin or await is_org_admin(conn, actor.account_id, name)


async def require_manager(conn: AsyncConnection, actor: Actor, name: str) -> None:
    if actor.account_id is None:
        raise NotSignedIn("must be signed in")
    if not await may_manage(conn, actor, name):
        raise Refused(NOT_ALLOWED)


def require_site_admin(actor: Actor, refusal: str) -> None:
    if actor.account_id is None:
        raise NotSignedIn("must be signed in")
    if not actor.is_admin:
        raise Refused(refusal)
