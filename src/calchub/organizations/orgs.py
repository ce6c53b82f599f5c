"""Organizations as CoCalc's `org.*` API has them: site admins create them and appoint their
admins; an organization's admins manage its members (create accounts for them, sign in as
them, message them). An account belongs to at most one organization (`accounts.org`).

Where CoCalc reveals more than it needs to, calchub checks permission first: whether an
account exists is only told to someone allowed to act on it."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from calchub.accounts.creation import NewAccount, create_account
from calchub.accounts.secret import digest, random_base62
from calchub.accounts.store import is_valid_email
from calchub.actor import Actor
from calchub.db.tables import accounts, auth_tokens, organization_admins, organizations
from calchub.errors import Conflict, Invalid, NotFound, Refused
from calchub.hub import Hub
from calchub.ids import is_valid_uuid, new_id
from calchub.messages.send import MAX_BODY, MAX_SUBJECT, deliver, throttle
from calchub.organizations.access import is_org_admin, require_manager, require_site_admin

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,38}$")
TOKEN_LENGTH = 24
TOKEN_LIFETIME = timedelta(hours=24)
FIELD_LIMITS = {"title": 256, "description": 10_000, "link": 2048, "email_address": 254}


@dataclass(frozen=True)
class Member:
    account_id: str
    org: str | None
    is_admin: bool


def _check_name(name: str) -> None:
    # The name is how everything links to the org and cannot change: keep it URL-safe.
    if not NAME_PATTERN.match(name):
        raise Invalid(
            "name must be 1 to 39 letters, digits, '-' or '_', starting with a letter or digit"
        )


async def _org_id(conn: AsyncConnection, name: str) -> str:
    found = await conn.scalar(
        select(organizations.c.organization_id).where(organizations.c.name == name)
    )
    if found is None:
        raise NotFound(f"no org named '{name}'")
    return str(found)


async def _find_account(conn: AsyncConnection, user: str) -> Member | None:
    """`user` is an account id or an email address."""
    if is_valid_uuid(user):
        where = accounts.c.account_id == user.lower()
    elif is_valid_email(user):
        where = accounts.c.email_address == user.lower()
    else:
        return None
    row = (
        await conn.execute(
            select(accounts.c.account_id, accounts.c.org, accounts.c.groups).where(
                where, accounts.c.deleted.is_(False)
            )
        )
    ).first()
    if row is None:
        return None
    return Member(row.account_id, row.org, "admin" in (row.groups or []))


async def get_all(hub: Hub, actor: Actor) -> list[dict[str, Any]]:
    require_site_admin(actor, "must be a site admin")
    async with hub.engine.connect() as conn:
        rows = (
            await conn.execute(
                select(
                    organizations.c.organization_id, organizations.c.name, organizations.c.title
                ).order_by(organizations.c.name)
            )
        ).all()
        admins = await _admins(conn, [row.organization_id for row in rows])
    return [
        {"name": row.name, "title": row.title, "admin_account_ids": admins[row.organization_id]}
        for row in rows
    ]


async def _admins(conn: AsyncConnection, org_ids: list[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {org_id: [] for org_id in org_ids}
    if org_ids:
        rows = await conn.execute(
            select(organization_admins.c.organization_id, organization_admins.c.account_id)
            .where(organization_admins.c.organization_id.in_(org_ids))
            .order_by(organization_admins.c.added, organization_admins.c.account_id)
        )
        for row in rows:
            found[row.organization_id].append(row.account_id)
    return found


async def create(hub: Hub, actor: Actor, name: str) -> str:
    """A new organization; its id."""
    require_site_admin(actor, "only admins may create organizations")
    _check_name(name)
    used = f"name {name} is already used by some account or organization"
    organization_id = new_id()
    try:
        async with hub.engine.begin() as conn:
            taken = await conn.scalar(
                select(func.count()).select_from(accounts).where(accounts.c.name == name)
            )
            if taken:
                raise Conflict(used)
            await conn.execute(
                insert(organizations).values(
                    organization_id=organization_id, name=name, created=actor.now
                )
            )
    except IntegrityError:
        raise Conflict(used) from None
    return organization_id


async def get(hub: Hub, actor: Actor, name: str) -> dict[str, Any]:
    async with hub.engine.connect() as conn:
        await require_manager(conn, actor, name)
        row = (
            await conn.execute(select(organizations).where(organizations.c.name == name))
        ).first()
        if row is None:
            raise NotFound(f"no org named '{name}'")
        admins = await _admins(conn, [row.organization_id])
    return {
        "name": row.name,
        "title": row.title,
        "description": row.description,
        "link": row.link,
        "email_address": row.email_address,
        "admin_account_ids": admins[row.organization_id],
    }


async def set_fields(hub: Hub, actor: Actor, name: str, changes: dict[str, str | None]) -> None:
    """Change title, description, link or email_address (None leaves a field as it is)."""
    values = {field: value for field, value in changes.items() if value is not None}
    for field, value in values.items():
        if field not in FIELD_LIMITS:
            raise Invalid(f"unknown field '{field}'")
        if len(value) > FIELD_LIMITS[field]:
            raise Invalid(f"{field} must be at most {FIELD_LIMITS[field]} characters")
    email = values.get("email_address")
    if email and not is_valid_email(email):
        raise Invalid("email_address is not a valid email address")
    async with hub.engine.begin() as conn:
        await require_manager(conn, actor, name)
        await _org_id(conn, name)
        if values:
            await conn.execute(
                update(organizations).where(organizations.c.name == name).values(**values)
            )


async def add_admin(hub: Hub, actor: Actor, name: str, user: str) -> None:
    """Make an account an admin of the organization (and a member of it)."""
    require_site_admin(actor, "only site admins can make a user an organization admin right now")
    async with hub.engine.begin() as conn:
        member = await _find_account(conn, user)
        if member is None:
            raise NotFound(f"no such account '{user}'")
        if member.org is not None and member.org != name:
            raise Conflict(f"User '{user}' is already member of another organization")
        org_id = await _org_id(conn, name)
        if not await is_org_admin(conn, member.account_id, name):
            await conn.execute(
                insert(organization_admins).values(
                    organization_id=org_id, account_id=member.account_id, added=actor.now
                )
            )
        await conn.execute(
            update(accounts).where(accounts.c.account_id == member.account_id).values(org=name)
        )


async def add_user(hub: Hub, actor: Actor, name: str, user: str) -> None:
    """Put an account in the organization, moving it out of any other one."""
    require_site_admin(actor, "only site admins can add/move a user to an org right now")
    async with hub.engine.begin() as conn:
        member = await _find_account(conn, user)
        if member is None:
            raise NotFound(f"cannot find user '{user}'")
        await _org_id(conn, name)
        if member.org is not None and member.org != name:
            # One organization per account: being moved ends being an admin of the old one.
            await conn.execute(
                delete(organization_admins).where(
                    organization_admins.c.account_id == member.account_id
                )
            )
        await conn.execute(
            update(accounts).where(accounts.c.account_id == member.account_id).values(org=name)
        )


async def create_user(
    hub: Hub,
    actor: Actor,
    name: str,
    email: str,
    first_name: str | None = None,
    last_name: str | None = None,
    password: str | None = None,
) -> str:
    """A new account in the organization (a random password unless one is given); its id.
    Like CoCalc, the organization need not exist yet (then only a site admin may do this)."""
    async with hub.engine.connect() as conn:
        await require_manager(conn, actor, name)
    created = await create_account(
        hub,
        NewAccount(
            first_name=first_name or "User",
            last_name=last_name or "User",
            email_address=email,
            password=password or secrets.token_urlsafe(24),
        ),
        ip=actor.ip,
        # Organization admins are appointed by site admins, and create their members' accounts.
        creator_is_admin=True,
        welcome=False,
    )
    async with hub.engine.begin() as conn:
        await conn.execute(
            update(accounts).where(accounts.c.account_id == created.account_id).values(org=name)
        )
    return created.account_id


async def create_token(hub: Hub, actor: Actor, user: str) -> dict[str, str]:
    """A sign-in link (not an API key) for a member, valid for 24 hours."""
    async with hub.engine.begin() as conn:
        member = await _find_account(conn, user)
        if member is None or member.org is None:
            raise Refused("user is not in an org")
        await require_manager(conn, actor, member.org)
        if member.is_admin and not actor.is_admin:
            # An organization admin must not become a site admin by signing in as one.
            raise Refused("only site admins may sign in as a site admin")
        token = random_base62(TOKEN_LENGTH)
        await conn.execute(
            insert(auth_tokens).values(
                token_hash=digest(token),
                account_id=member.account_id,
                created_by=actor.caller,
                expire=actor.now + TOKEN_LIFETIME,
            )
        )
    url = f"{hub.settings.resolved_site_url.rstrip('/')}/auth/impersonate?auth_token={token}"
    return {"token": token, "url": url}


async def expire_token(hub: Hub, actor: Actor, token: str) -> None:
    """End a sign-in token at once. Knowing the token is the permission."""
    actor.caller  # noqa: B018  (signed in)
    async with hub.engine.begin() as conn:
        await conn.execute(delete(auth_tokens).where(auth_tokens.c.token_hash == digest(token)))


async def get_users(hub: Hub, actor: Actor, name: str) -> list[dict[str, Any]]:
    async with hub.engine.connect() as conn:
        await require_manager(conn, actor, name)
        rows = await conn.execute(
            select(
                accounts.c.first_name,
                accounts.c.last_name,
                accounts.c.account_id,
                accounts.c.email_address,
                accounts.c.last_active,
            )
            .where(accounts.c.org == name, accounts.c.deleted.is_(False))
            .order_by(accounts.c.created, accounts.c.account_id)
        )
        return [dict(row._mapping) for row in rows]


async def remove_user(hub: Hub, actor: Actor, name: str, user: str) -> None:
    async with hub.engine.begin() as conn:
        await require_manager(conn, actor, name)
        member = await _find_account(conn, user)
        if member is None:
            raise NotFound(f"cannot find user '{user}'")
        if await is_org_admin(conn, member.account_id, name):
            raise Refused("admin cannot be removed from org; first remove them from being an admin")
        # Only from this organization: its admins have no say over another one's members.
        await conn.execute(
            update(accounts)
            .where(accounts.c.account_id == member.account_id, accounts.c.org == name)
            .values(org=None)
        )


async def remove_admin(hub: Hub, actor: Actor, name: str, user: str) -> None:
    async with hub.engine.begin() as conn:
        await require_manager(conn, actor, name)
        member = await _find_account(conn, user)
        if member is None:
            raise NotFound(f"cannot find user '{user}'")
        org_id = await _org_id(conn, name)
        await conn.execute(
            delete(organization_admins).where(
                organization_admins.c.organization_id == org_id,
                organization_admins.c.account_id == member.account_id,
            )
        )


async def message(hub: Hub, actor: Actor, name: str, subject: str, body: str) -> None:
    """One message from the caller to every member of the organization."""
    if len(subject) > MAX_SUBJECT or len(body) > MAX_BODY:
        raise Invalid(f"subject and body must be at most {MAX_SUBJECT} and {MAX_BODY} characters")
    async with hub.engine.begin() as conn:
        await require_manager(conn, actor, name)
        rows = await conn.execute(
            select(accounts.c.account_id)
            .where(accounts.c.org == name, accounts.c.deleted.is_(False))
            .order_by(accounts.c.account_id)
        )
        members = [row.account_id for row in rows]
        if members:
            await throttle(conn, actor)
            await deliver(conn, actor, actor.caller, members, subject, body)
